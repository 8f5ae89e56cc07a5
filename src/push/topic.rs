//! The MQTT topics of the push platform: an app's channel is `push/{apikey}`, one client's own
//! topic `push/{apikey}/{clientId}`. The push service names them on the pushes it composes; the
//! MQTT session reads them on SUBSCRIBE and PUBLISH.
//!
//! # Invariants
//! - [`parse`] is the inverse of [`channel`] and [`client`] for every apikey (no `/`: apikeys
//!   are printable ASCII without spaces, checked by the configuration, and a `/` in one would be
//!   refused there) and every clientId without a `/` or a wildcard.
//! - Wildcards (`+`, `#`) never match anything here: a filter with one is no topic of ours.

/// The first level of every topic of ours.
pub const PREFIX: &str = "push/";

/// The topic of `apikey`'s channel.
pub fn channel(apikey: &str) -> String {
    format!("{PREFIX}{apikey}")
}

/// The topic of `client_id` in `apikey`'s app.
pub fn client(apikey: &str, client_id: &str) -> String {
    format!("{PREFIX}{apikey}/{client_id}")
}

/// A topic of ours, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `push/{apikey}`.
    Channel { apikey: &'a str },
    /// `push/{apikey}/{clientId}`.
    Client { apikey: &'a str, client_id: &'a str },
}

impl<'a> Topic<'a> {
    pub fn apikey(self) -> &'a str {
        match self {
            Topic::Channel { apikey } | Topic::Client { apikey, .. } => apikey,
        }
    }
}

/// Reads `topic` (a topic name or filter) as one of ours; `None` for anything else, wildcards
/// included.
pub fn parse(topic: &str) -> Option<Topic<'_>> {
    let rest = topic.strip_prefix(PREFIX)?;
    if rest.contains(['+', '#']) {
        return None;
    }
    match rest.split_once('/') {
        None if !rest.is_empty() => Some(Topic::Channel { apikey: rest }),
        Some((apikey, client_id))
            if !apikey.is_empty() && !client_id.is_empty() && !client_id.contains('/') =>
        {
            Some(Topic::Client { apikey, client_id })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(parse(&channel("demo")), Some(Topic::Channel { apikey: "demo" }));
        assert_eq!(
            parse(&client("demo", "phone-1")),
            Some(Topic::Client { apikey: "demo", client_id: "phone-1" })
        );
        assert_eq!(parse(&client("demo", "phone-1")).unwrap().apikey(), "demo");
    }

    #[test]
    fn anything_else_is_not_ours() {
        for other in [
            "",
            "push",
            "push/",
            "push//x",
            "push/demo/",
            "push/demo/a/b",
            "push/+",
            "push/#",
            "push/demo/+",
            "push/demo/#",
            "#",
            "news/demo",
            "Push/demo",
            "/push/demo",
        ] {
            assert_eq!(parse(other), None, "{other:?}");
        }
    }
}
