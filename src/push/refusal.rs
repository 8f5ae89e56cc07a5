//! A request the push service answers with an error, in words every edge renders its own way:
//! a Pomelo response `{code, msg}`, an HTTP status with `{"error", "code"}`.
//!
//! # Invariants
//! - `code` is an HTTP status number, and the same for the same request from any edge.
//! - `msg` is the classic platform's wording (what Pomelo clients read); `detail` adds what an
//!   edge with room for it may show (the HTTP API shows `msg: detail`).

use std::time::Duration;

use crate::protocol::wire::truncate_str;

/// The most bytes of a peer's input that a refusal echoes.
pub const ECHO_BYTES: usize = 64;

/// A peer's input as a refusal quotes it: Rust-quoted, its first [`ECHO_BYTES`] bytes only
/// (then `…`), so an error is never much larger than a bad request's name of the thing.
pub fn quoted(input: &str) -> String {
    let kept = truncate_str(input, ECHO_BYTES);
    if kept.len() == input.len() { format!("{kept:?}") } else { format!("{kept:?}…") }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub msg: String,
    pub detail: Option<String>,
    /// For `429`: how long until the app's rate allows another push.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    pub fn new(code: u16, msg: impl Into<String>) -> Refusal {
        Refusal { code, msg: msg.into(), detail: None, retry_after: None }
    }

    pub fn bad_request(msg: impl Into<String>) -> Refusal {
        Refusal::new(400, msg)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Refusal {
        self.detail = Some(detail.into());
        self
    }

    /// The message with its detail, for an edge that shows both.
    pub fn full_message(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{}: {detail}", self.msg),
            None => self.msg.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_short() {
        assert_eq!(quoted("demo"), "\"demo\"");
        let long = quoted(&"\"".repeat(1000));
        assert!(long.ends_with('…') && long.len() < 4 * ECHO_BYTES, "{long}");
    }
}
