//! The sustained phase's rule: whether a push rate was *held*, and which rate to try next.
//!
//! A step pushes at `rate` pushes per second for `secs` seconds to `recipients` connections,
//! offering `rate × recipients` deliveries per second. It is held when
//! 1. the publisher really offered it: it sent at least 95 % of the step's pushes in time;
//! 2. everything was delivered: no push is missing on any connection that stayed up;
//! 3. the deliveries per second, counted from the first send to the last receive (so a backlog
//!    that drains after the step counts against it), reach at least 95 % of the offer;
//! 4. the 99th percentile latency is at most the limit (250 ms by default).
//!
//! A step that sent nothing, or to nobody, is not held either.
//!
//! Steps multiply the rate by a factor until a step is not held, a step count or rate cap is
//! reached; the answer is the best held step.

use serde::{Deserialize, Serialize};

/// The share of the offered deliveries per second that must be delivered (and of the pushes
/// the publisher must get out).
pub const HELD_SHARE: f64 = 0.95;

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Pushes per second asked for.
    pub rate: f64,
    /// The step's length in seconds.
    pub secs: f64,
    /// Pushes the step should send: `rate × secs`.
    pub planned: u64,
    /// Pushes the publisher sent.
    pub sent: u64,
    /// Seconds from the first to the last send.
    pub send_secs: f64,
    /// Connections the pushes went to (stable ones, at the start of the step).
    pub recipients: u64,
    /// Deliveries counted.
    pub deliveries: u64,
    /// Pushes missing on stable connections.
    pub lost: u64,
    /// Seconds from the first send to the last receive.
    pub span_secs: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Why a step was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Miss {
    /// The publisher could not send at the rate.
    Publisher,
    /// Pushes went missing on connections that stayed up.
    Lost,
    /// Fewer than 95 % of the offered deliveries per second.
    Throughput,
    /// The 99th percentile latency was over the limit.
    Latency,
    /// No push was sent or no connection was there to receive it.
    Nothing,
}

/// The verdict on one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Deliveries per second offered: `rate × recipients`.
    pub offered_per_sec: f64,
    /// Deliveries per second achieved, from the first send to the last receive.
    pub delivered_per_sec: f64,
    /// `None` when the step was held.
    pub miss: Option<Miss>,
}

impl Verdict {
    /// Whether the step was held.
    pub fn held(&self) -> bool {
        self.miss.is_none()
    }
}

/// Judges one step against the rule in the module doc, with `p99_limit_ms`.
pub fn judge(step: &StepOutcome, p99_limit_ms: f64) -> Verdict {
    let offered_per_sec = step.rate * step.recipients as f64;
    let window = step.span_secs.max(step.secs).max(f64::MIN_POSITIVE);
    let delivered_per_sec = step.deliveries as f64 / window;
    let send_rate = if step.send_secs > 0.0 {
        // n pushes span n - 1 intervals.
        step.sent.saturating_sub(1) as f64 / step.send_secs
    } else {
        step.rate
    };
    let miss = if step.sent == 0 || step.recipients == 0 {
        Some(Miss::Nothing)
    } else if (step.sent as f64) < HELD_SHARE * step.planned as f64
        || send_rate < HELD_SHARE * step.rate
    {
        Some(Miss::Publisher)
    } else if step.lost > 0 || step.deliveries < step.sent * step.recipients {
        Some(Miss::Lost)
    } else if delivered_per_sec < HELD_SHARE * offered_per_sec {
        Some(Miss::Throughput)
    } else if step.p99_ms > p99_limit_ms {
        Some(Miss::Latency)
    } else {
        None
    };
    Verdict { offered_per_sec, delivered_per_sec, miss }
}

/// The rate of each step: `start`, then × `factor`, capped at `max_rate`, at most `steps` of
/// them; the caller stops at the first step not held.
pub fn rates(start: f64, factor: f64, max_rate: f64, steps: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(steps);
    let mut rate = start.max(f64::MIN_POSITIVE);
    while out.len() < steps && rate <= max_rate {
        out.push(rate);
        if factor <= 1.0 {
            break;
        }
        rate *= factor;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> StepOutcome {
        StepOutcome {
            rate: 100.0,
            secs: 2.0,
            planned: 200,
            sent: 200,
            send_secs: 1.99,
            recipients: 1_000,
            deliveries: 200_000,
            lost: 0,
            span_secs: 2.05,
            p99_ms: 20.0,
        }
    }

    #[test]
    fn a_clean_step_is_held() {
        let v = judge(&good(), 250.0);
        assert!(v.held(), "{v:?}");
        assert_eq!(v.offered_per_sec, 100_000.0);
        assert!((v.delivered_per_sec - 200_000.0 / 2.05).abs() < 1e-6);
    }

    #[test]
    fn each_rule_can_fail_the_step() {
        let miss = |step: StepOutcome| judge(&step, 250.0).miss;
        assert_eq!(miss(StepOutcome { sent: 150, ..good() }), Some(Miss::Publisher));
        assert_eq!(
            miss(StepOutcome { send_secs: 3.0, ..good() }),
            Some(Miss::Publisher),
            "sending took longer than the step"
        );
        assert_eq!(miss(StepOutcome { lost: 1, ..good() }), Some(Miss::Lost));
        assert_eq!(miss(StepOutcome { deliveries: 199_999, ..good() }), Some(Miss::Lost));
        assert_eq!(
            miss(StepOutcome { span_secs: 2.2, ..good() }),
            Some(Miss::Throughput),
            "a backlog draining after the step"
        );
        assert_eq!(miss(StepOutcome { p99_ms: 251.0, ..good() }), Some(Miss::Latency));
        assert_eq!(
            miss(StepOutcome { recipients: 0, deliveries: 0, ..good() }),
            Some(Miss::Nothing)
        );
        // 95 % exactly is held.
        assert_eq!(miss(StepOutcome { span_secs: 2.0 / 0.95, ..good() }), None);
    }

    #[test]
    fn rate_steps() {
        assert_eq!(rates(10.0, 2.0, 100.0, 10), [10.0, 20.0, 40.0, 80.0]);
        assert_eq!(rates(10.0, 2.0, 1e9, 3), [10.0, 20.0, 40.0]);
        assert_eq!(rates(10.0, 1.0, 1e9, 3), [10.0]);
        assert!(rates(10.0, 2.0, 5.0, 3).is_empty());
    }
}
