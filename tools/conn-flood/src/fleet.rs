//! The fleet of event loops, in this process or spread over worker processes, seen by the
//! coordinator as one thing: send a command to every loop, receive reports from any.
//!
//! One process may hold at most about 20,000 open files here, so past `--conns-per-proc`
//! connections the tool runs itself again as `conn-flood --worker` once per process. A worker
//! reads a [`ProcessSpec`] and then [`Command`]s from stdin, one JSON object per line, and writes
//! every loop's [`Envelope`]s to stdout the same way; its stderr is the parent's. A worker whose
//! stdin closes (the parent died) stops its loops and exits.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mio::{Poll, Waker};
use serde::{Deserialize, Serialize};

use crate::flood;
use crate::report::{Command, Envelope, LoopSpec, Report};

/// What a worker process is told first: the loop settings and which loops it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The settings every loop shares (`loop_id` is set per loop).
    pub base: LoopSpec,
    /// The run-wide number of this process's first loop.
    pub first_loop: usize,
    /// How many loops this process runs.
    pub loops: usize,
}

/// The coordinator's handle on an event loop running on a thread of this process.
#[derive(Debug)]
pub struct LoopHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl LoopHandle {
    /// Starts a loop for `spec` on its own thread; it reports through `reports`.
    pub fn spawn(spec: LoopSpec, reports: Sender<Envelope>) -> io::Result<LoopHandle> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), flood::WAKER)?);
        let (commands, inbox) = mpsc::channel();
        let name = format!("flood-{}", spec.loop_id);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || flood::run(spec, poll, inbox, reports))?;
        Ok(LoopHandle { commands, waker, thread: Some(thread) })
    }

    /// Hands `command` to the loop and wakes it; false when the loop is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok() && self.waker.wake().is_ok()
    }

    /// Waits for the loop's thread to end.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One process's loops, seen from the coordinator.
#[derive(Debug)]
enum Member {
    /// Loops on threads of this process.
    Local(Vec<LoopHandle>),
    /// A worker process.
    Child { child: Child, stdin: Option<ChildStdin>, reader: Option<JoinHandle<()>> },
}

/// Every loop of the run.
#[derive(Debug)]
pub struct Fleet {
    members: Vec<Member>,
    loops: usize,
    reports: Receiver<Envelope>,
}

impl Fleet {
    /// Starts `procs × threads` loops: on threads of this process when `procs` is 1, otherwise
    /// in `procs` worker processes started from `exe`.
    pub fn start(
        base: &LoopSpec,
        procs: usize,
        threads: usize,
        exe: Option<&Path>,
    ) -> anyhow::Result<Fleet> {
        let loops = procs * threads;
        let base = LoopSpec { loops, ..base.clone() };
        let (tx, reports) = mpsc::channel();
        let mut members = Vec::with_capacity(procs);
        if procs == 1 {
            let handles = (0..threads)
                .map(|loop_id| LoopHandle::spawn(LoopSpec { loop_id, ..base.clone() }, tx.clone()))
                .collect::<Result<Vec<_>, _>>()
                .context("starting event loops")?;
            members.push(Member::Local(handles));
        } else {
            let Some(exe) = exe else {
                bail!("more than one process needs the path of the conn-flood binary");
            };
            for p in 0..procs {
                let spec =
                    ProcessSpec { base: base.clone(), first_loop: p * threads, loops: threads };
                members.push(spawn_worker(exe, &spec, tx.clone())?);
            }
        }
        Ok(Fleet { members, loops, reports })
    }

    /// Loops in the fleet.
    pub fn loops(&self) -> usize {
        self.loops
    }

    /// Sends `command` to every loop.
    pub fn send(&mut self, command: &Command) -> anyhow::Result<()> {
        for member in &mut self.members {
            match member {
                Member::Local(handles) => {
                    for handle in handles.iter() {
                        if !handle.send(command.clone()) {
                            bail!("an event loop is gone");
                        }
                    }
                }
                Member::Child { stdin, .. } => {
                    let Some(stdin) = stdin else {
                        bail!("a worker's stdin is closed");
                    };
                    let mut line = serde_json::to_string(command)?;
                    line.push('\n');
                    stdin
                        .write_all(line.as_bytes())
                        .and_then(|()| stdin.flush())
                        .context("writing to a worker")?;
                }
            }
        }
        Ok(())
    }

    /// The next report, waiting at most `timeout`; `None` on timeout.
    pub fn recv(&self, timeout: Duration) -> anyhow::Result<Option<Envelope>> {
        match self.reports.recv_timeout(timeout) {
            Ok(envelope) => Ok(Some(envelope)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => bail!("every event loop is gone"),
        }
    }

    /// Tells every loop to quit and waits, at most `limit`, for all of them to finish; a worker
    /// process still running then is killed.
    pub fn stop(mut self, limit: Duration) {
        let _ = self.send(&Command::Quit);
        let deadline = Instant::now() + limit;
        let mut byes = 0;
        while byes < self.loops {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(Envelope { report: Report::Bye | Report::Fatal(_), .. }) => byes += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for member in self.members.drain(..) {
            match member {
                Member::Local(handles) => handles.into_iter().for_each(LoopHandle::join),
                Member::Child { mut child, stdin, reader } => {
                    drop(stdin);
                    while Instant::now() < deadline {
                        if let Ok(Some(_)) = child.try_wait() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if let Ok(None) = child.try_wait() {
                        let _ = child.kill();
                    }
                    let _ = child.wait();
                    if let Some(reader) = reader {
                        let _ = reader.join();
                    }
                }
            }
        }
    }
}

/// Starts `exe --worker`, hands it `spec`, and relays its reports into `tx`.
fn spawn_worker(exe: &Path, spec: &ProcessSpec, tx: Sender<Envelope>) -> anyhow::Result<Member> {
    let mut child = Process::new(exe)
        .arg("--worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting worker {}", exe.display()))?;
    let mut stdin = child.stdin.take().context("worker stdin")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut line = serde_json::to_string(spec)?;
    line.push('\n');
    stdin.write_all(line.as_bytes())?;
    stdin.flush()?;
    let first_loop = spec.first_loop;
    let reader =
        std::thread::Builder::new().name(format!("worker-{first_loop}")).spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let envelope = serde_json::from_str(&line).unwrap_or_else(|e| Envelope {
                    from: first_loop,
                    report: Report::Fatal(format!("bad line from a worker ({e}): {line}")),
                });
                if tx.send(envelope).is_err() {
                    break;
                }
            }
        })?;
    Ok(Member::Child { child, stdin: Some(stdin), reader: Some(reader) })
}

/// The worker process: runs the loops of the [`ProcessSpec`] read from stdin, relays commands
/// to them and their reports to stdout, until `Quit` or the end of stdin.
pub fn worker_main() -> anyhow::Result<()> {
    shaddock::limits::raise_open_files();
    let mut lines = std::io::stdin().lock().lines();
    let first = lines.next().context("no process spec on stdin")??;
    let spec: ProcessSpec = serde_json::from_str(&first).context("reading the process spec")?;
    let (tx, rx) = mpsc::channel::<Envelope>();
    let writer = std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        for envelope in rx {
            let Ok(mut line) = serde_json::to_string(&envelope) else {
                continue;
            };
            line.push('\n');
            if stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                break;
            }
        }
    });
    let handles = (0..spec.loops)
        .map(|t| {
            let loop_id = spec.first_loop + t;
            LoopHandle::spawn(LoopSpec { loop_id, ..spec.base.clone() }, tx.clone())
        })
        .collect::<Result<Vec<_>, _>>()?;
    drop(tx);
    for line in lines {
        let Ok(line) = line else { break };
        let command: Command = serde_json::from_str(&line).context("reading a command")?;
        let quit = matches!(command, Command::Quit);
        for handle in &handles {
            handle.send(command.clone());
        }
        if quit {
            break;
        }
    }
    for handle in &handles {
        handle.send(Command::Quit);
    }
    handles.into_iter().for_each(LoopHandle::join);
    let _ = writer.join();
    Ok(())
}
