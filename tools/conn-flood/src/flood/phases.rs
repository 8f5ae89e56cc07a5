//! The loop's side of the coordinator's commands (`report.rs`): a phase begins (counters reset,
//! the connect queue filled, churn armed), the wait for stragglers, and the phase's end with its
//! report.

use std::sync::mpsc::TryRecvError;

use super::{Churn, Counters, Flood};
use crate::clock::now_ns;
use crate::conn::Stage;
use crate::report::{Command, PhaseKind, PhaseSpec, PhaseStats, Report};

impl Flood {
    /// Handles every queued command; false on `Quit` or when the coordinator is gone.
    pub(super) fn take_commands(&mut self) -> bool {
        loop {
            match self.inbox.try_recv() {
                Ok(Command::Begin(spec)) => self.begin(spec),
                Ok(Command::Await { seq_end, timeout_ms }) => {
                    self.churn = None;
                    self.book.set_target(seq_end, self.slots.iter().map(|s| &s.conn.tally));
                    self.awaiting = Some(now_ns() + timeout_ms * 1_000_000);
                    self.check_await(now_ns());
                }
                Ok(Command::End) => self.end(),
                Ok(Command::Quit) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    pub(super) fn begin(&mut self, spec: PhaseSpec) {
        let now = now_ns();
        self.phase = spec.kind;
        self.counters = Counters {
            entered: self.counters.entered,
            connecting: self.counters.connecting,
            ..Counters::default()
        };
        self.enter_latency.clear();
        self.tls_latency.clear();
        self.book.begin(
            spec.seq_start,
            spec.track,
            self.slots.iter_mut().map(|s| (&mut s.conn.tally, s.conn.stage == Stage::Entered)),
        );
        self.awaiting = None;
        self.churn = None;
        match spec.kind {
            PhaseKind::Connect => {
                self.connect_settled = false;
                self.to_connect = (0..self.slots.len())
                    .filter(|&at| self.slots[at].conn.stage == Stage::Idle)
                    .collect();
            }
            PhaseKind::Churn if spec.churn_per_sec > 0.0 => {
                self.churn = Some(Churn { per_sec: spec.churn_per_sec, start_ns: now, done: 0 });
            }
            _ => {}
        }
        self.report(Report::Begun);
    }

    pub(super) fn end(&mut self) {
        if self.phase == PhaseKind::Connect {
            self.to_connect.clear();
            self.retries.clear();
            for at in 0..self.slots.len() {
                let stage = self.slots[at].conn.stage;
                if !matches!(stage, Stage::Idle | Stage::Entered) {
                    self.close(at);
                    self.counters.failed += 1;
                    self.count_error("not entered when the connect phase ended".into());
                }
            }
        }
        self.churn = None;
        self.awaiting = None;
        let c = &self.counters;
        let stats = PhaseStats {
            entered: c.entered,
            failed: c.failed,
            dropped: c.dropped,
            connects: c.connects,
            first_connect_ns: c.first_connect_ns,
            last_entered_ns: c.last_entered_ns,
            enter_latency: self.enter_latency.to_sparse(),
            churned: c.churned,
            reconnects: c.reconnects,
            errors: c.errors.clone(),
            tls_handshakes: c.tls_handshakes,
            last_tls_ns: c.last_tls_ns,
            tls_latency: self.tls_latency.to_sparse(),
            tls_negotiated: c.tls_negotiated.clone(),
            ..self.book.stats(self.slots.iter().map(|s| &s.conn.tally))
        };
        self.report(Report::Done(Box::new(stats)));
    }

    pub(super) fn check_await(&mut self, now: u64) {
        if let Some(deadline) = self.awaiting {
            let complete = self.book.caught_up();
            if complete || now >= deadline {
                self.awaiting = None;
                self.report(Report::Caught { complete });
            }
        }
    }
}
