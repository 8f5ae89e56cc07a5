//! The publisher: one management session per app (`{role:"server", apikey, secret}`) that sends
//! `pushAll` requests, or, against Redis, one connection that sends `PUBLISH`, or, over MQTT,
//! one connection per app (user name the apikey, password the secret: a management session on
//! shaddock, anything on an anonymous broker) that publishes at QoS 1 to `push/{apikey}`.
//!
//! An MQTT PUBACK carries no recipient count; it is [`Reply::Accepted`]. The MQTT publisher
//! keeps at most the server's Receive Maximum (5.0 CONNACK; 65,535 otherwise) PUBLISHes
//! unacknowledged, waiting for PUBACKs before it sends more.
//!
//! Each push carries a stamp (`wire/stamp.rs`) written just before the request goes out. A
//! reader thread per session turns responses into [`Reply`]s (`recipients` from
//! `{"code":200,"recipients":N}`, or the receiver count `PUBLISH` answers), ignores the
//! `onAdd`/`onLeave` pushes a management session gets, and sends the session's heartbeats.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use shaddock::protocol::pomelo::message::{self, MessageType};
use shaddock::protocol::pomelo::package::{self, PackageType};
use shaddock::protocol::pomelo::{handshake, kick};

use crate::clock::now_ns;
use crate::wire::mqtt::{self, Packet as MqttPacket};
use crate::wire::resp::{self, Item, Reply as RespReply};
use crate::wire::{pomelo, stamp};

/// The largest package or reply the publisher reads (an enter response lists every clientId).
const MAX_READ: usize = 64 << 20;
/// The MQTT publisher's keep alive, seconds (PINGREQ at half of it).
const MQTT_KEEP_ALIVE: u16 = 60;

/// An answer to one push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Accepted, for this many recipients.
    Recipients(u64),
    /// Accepted; the server does not say for how many (an MQTT PUBACK).
    Accepted,
    /// Refused or failed, with the reason.
    Refused(String),
}

/// What came back for a batch of requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Replies received.
    pub replies: u64,
    /// Replies that carried a recipient count.
    pub counted: u64,
    /// Recipients summed over accepted replies.
    pub recipients: u64,
    /// Refusals, each reason once.
    pub refusals: Vec<String>,
}

/// Which protocol the publisher speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Pomelo management sessions and `pushAll`.
    Pomelo,
    /// Redis `PUBLISH`.
    Redis,
    /// MQTT `PUBLISH` at QoS 1.
    Mqtt(mqtt::Version),
}

#[derive(Debug)]
struct Session {
    writer: Arc<Mutex<TcpStream>>,
    /// The apikey as a JSON string literal (Pomelo), the channel (Redis) or the topic (MQTT).
    target: String,
    reader: Option<JoinHandle<()>>,
    /// MQTT: PUBLISHes not acknowledged yet, and the most the server allows.
    inflight: Arc<AtomicU32>,
    window: u32,
}

/// The publishing side of a run.
#[derive(Debug)]
pub struct Publisher {
    dialect: Dialect,
    sessions: Vec<Session>,
    replies: Receiver<Reply>,
    stop: Arc<AtomicBool>,
    next_id: u32,
    timeout: Duration,
    msg_bytes: usize,
    stamp: BytesMut,
    body: BytesMut,
    packet: BytesMut,
}

impl Publisher {
    /// Connects one session per `(apikey, secret)` of `apps` (Redis: one connection, publishing
    /// to every apikey as a channel).
    pub fn connect(
        dialect: Dialect,
        target: SocketAddr,
        apps: &[(String, String)],
        msg_bytes: usize,
        timeout: Duration,
    ) -> anyhow::Result<Publisher> {
        let (tx, replies) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut sessions = Vec::with_capacity(apps.len());
        for (n, (apikey, secret)) in apps.iter().enumerate() {
            let stream = TcpStream::connect_timeout(&target, timeout)
                .with_context(|| format!("publisher connect to {target}"))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(timeout))?;
            let mut window = u32::MAX;
            let (session_target, heartbeat, leftover) = match dialect {
                Dialect::Pomelo => {
                    let (heartbeat, leftover) = enter_management(&stream, apikey, secret)
                        .with_context(|| format!("management session for app {apikey}"))?;
                    (pomelo::json_string(apikey), heartbeat, leftover)
                }
                Dialect::Redis => (apikey.clone(), None, Vec::new()),
                Dialect::Mqtt(version) => {
                    let client_id = format!("cf-pub-{}-{n}", std::process::id());
                    let (max, leftover) =
                        connect_mqtt(&stream, version, &client_id, apikey, secret)
                            .with_context(|| format!("MQTT publisher for app {apikey}"))?;
                    window = u32::from(max);
                    let ping = u32::from(MQTT_KEEP_ALIVE / 2);
                    (format!("push/{apikey}"), Some(ping), leftover)
                }
            };
            let inflight = Arc::new(AtomicU32::new(0));
            stream.set_read_timeout(Some(Duration::from_millis(500)))?;
            let writer = Arc::new(Mutex::new(stream.try_clone()?));
            let reader = spawn_reader(
                dialect,
                stream,
                leftover,
                Arc::clone(&writer),
                heartbeat,
                Links {
                    replies: tx.clone(),
                    stop: Arc::clone(&stop),
                    inflight: Arc::clone(&inflight),
                },
            )?;
            sessions.push(Session {
                writer,
                target: session_target,
                reader: Some(reader),
                inflight,
                window,
            });
        }
        Ok(Publisher {
            dialect,
            sessions,
            replies,
            stop,
            next_id: 1,
            timeout,
            msg_bytes,
            stamp: BytesMut::with_capacity(256),
            body: BytesMut::with_capacity(256),
            packet: BytesMut::with_capacity(256),
        })
    }

    /// Requests per push (one per app).
    pub fn requests_per_push(&self) -> u64 {
        self.sessions.len() as u64
    }

    /// Sends push `seq` to every app, each stamped with the time just before its write.
    pub fn publish(&mut self, seq: u64) -> anyhow::Result<()> {
        for session in &self.sessions {
            self.stamp.clear();
            stamp::encode(seq, now_ns(), self.msg_bytes, &mut self.stamp);
            self.packet.clear();
            match self.dialect {
                Dialect::Pomelo => {
                    self.body.clear();
                    pomelo::push_all_body(&session.target, &self.stamp, &mut self.body);
                    let id = self.next_id;
                    self.next_id = self.next_id.checked_add(1).unwrap_or(1);
                    pomelo::encode_request(id, pomelo::PUSH_ALL, &self.body, &mut self.packet)?;
                }
                Dialect::Redis => resp::encode_command(
                    &[b"PUBLISH", session.target.as_bytes(), &self.stamp],
                    &mut self.packet,
                ),
                Dialect::Mqtt(version) => {
                    wait_for_window(session, self.timeout)?;
                    // Packet ids 1..=65535, reused once acknowledged (the window is smaller).
                    let id = (self.next_id % 65_535 + 1) as u16;
                    self.next_id = self.next_id.wrapping_add(1);
                    session.inflight.fetch_add(1, Ordering::AcqRel);
                    mqtt::encode_publish(
                        version,
                        &session.target,
                        1,
                        id,
                        &self.stamp,
                        &mut self.packet,
                    );
                }
            }
            let mut writer =
                session.writer.lock().map_err(|_| anyhow::anyhow!("publisher writer poisoned"))?;
            writer.write_all(&self.packet).context("publishing")?;
        }
        Ok(())
    }

    /// Waits for `expected` replies, at most until `timeout` has passed.
    pub fn collect(&self, expected: u64, timeout: Duration) -> Collected {
        let deadline = Instant::now() + timeout;
        let mut got = Collected::default();
        while got.replies < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(reply) => {
                    got.replies += 1;
                    match reply {
                        Reply::Recipients(n) => {
                            got.counted += 1;
                            got.recipients += n;
                        }
                        Reply::Accepted => {}
                        Reply::Refused(why) if !got.refusals.contains(&why) => {
                            got.refusals.push(why)
                        }
                        Reply::Refused(_) => {}
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }

    /// Closes every session.
    pub fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for session in &mut self.sessions {
            if let Ok(writer) = session.writer.lock() {
                let _ = writer.shutdown(std::net::Shutdown::Both);
            }
            if let Some(reader) = session.reader.take() {
                let _ = reader.join();
            }
        }
    }
}

/// Handshake, ack and `enter` as `{role:"server"}`; returns the heartbeat interval and any
/// bytes read past the enter response.
fn enter_management(
    mut stream: &TcpStream,
    apikey: &str,
    secret: &str,
) -> anyhow::Result<(Option<u32>, Vec<u8>)> {
    let mut out = BytesMut::new();
    pomelo::encode_handshake(None, &mut out);
    stream.write_all(&out)?;
    let mut buf = Vec::new();
    let mut heartbeat = None;
    loop {
        let (kind, body, used) = read_package(&mut stream, &mut buf)?;
        match kind {
            PackageType::Handshake => {
                let answer = handshake::decode_response(&body)?;
                if answer.code != 200 {
                    bail!("handshake refused with code {}", answer.code);
                }
                heartbeat = answer.heartbeat;
                out.clear();
                pomelo::encode_ack(&mut out);
                let enter = pomelo::enter_server_body(apikey, secret);
                pomelo::encode_request(1, pomelo::ENTER, enter.as_bytes(), &mut out)?;
                stream.write_all(&out)?;
            }
            PackageType::Data => {
                let msg = message::decode(&body)?;
                if msg.kind == MessageType::Response && msg.id == 1 {
                    if pomelo::json_number(msg.body, "code") != Some(200) {
                        bail!("enter refused: {}", String::from_utf8_lossy(msg.body));
                    }
                    buf.drain(..used);
                    return Ok((heartbeat, buf));
                }
            }
            PackageType::Kick => bail!("kicked: {:?}", kick::decode(&body).ok().flatten()),
            PackageType::Heartbeat | PackageType::HandshakeAck => {}
        }
        buf.drain(..used);
    }
}

/// Waits (bounded by `timeout`) until the session may have one more PUBLISH unacknowledged.
fn wait_for_window(session: &Session, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while session.inflight.load(Ordering::Acquire) >= session.window {
        if Instant::now() >= deadline {
            bail!("no PUBACK within {timeout:?} ({} unacknowledged)", session.window);
        }
        std::thread::sleep(Duration::from_micros(20));
    }
    Ok(())
}

/// CONNECT (user name `apikey`, password `secret`) and its CONNACK; returns the server's
/// Receive Maximum (65,535 when it gives none) and any bytes read past the CONNACK.
fn connect_mqtt(
    mut stream: &TcpStream,
    version: mqtt::Version,
    client_id: &str,
    apikey: &str,
    secret: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut out = BytesMut::new();
    let connect = mqtt::Connect {
        version,
        client_id,
        username: Some(apikey),
        password: Some(secret.as_bytes()),
        keep_alive: MQTT_KEEP_ALIVE,
        clean: true,
        receive_maximum: None,
    };
    mqtt::encode_connect(&connect, &mut out);
    stream.write_all(&out)?;
    let mut buf = Vec::new();
    loop {
        if let Some((packet, used)) =
            mqtt::decode(&buf, version, MAX_READ).map_err(|e| anyhow::anyhow!("{e:?}"))?
        {
            match packet {
                MqttPacket::ConnAck { code: 0, receive_maximum, .. } => {
                    let max = receive_maximum.unwrap_or(u16::MAX);
                    buf.drain(..used);
                    return Ok((max, buf));
                }
                MqttPacket::ConnAck { code, .. } => bail!("CONNACK code 0x{code:02x}"),
                other => bail!("expected CONNACK, got {other:?}"),
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).context("reading from the server")?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until `buf` starts with a whole package; returns its type, a copy of its body and its
/// length (still in `buf`).
fn read_package(
    stream: &mut &TcpStream,
    buf: &mut Vec<u8>,
) -> anyhow::Result<(PackageType, Vec<u8>, usize)> {
    loop {
        if let Some((pkg, used)) = package::decode(buf, MAX_READ)? {
            return Ok((pkg.kind, pkg.body.to_vec(), used));
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = stream.read(&mut chunk).context("reading from the server")?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What a reader thread shares with the publisher.
#[derive(Debug)]
struct Links {
    /// Where replies go.
    replies: Sender<Reply>,
    /// Set when the publisher closes.
    stop: Arc<AtomicBool>,
    /// MQTT: PUBLISHes not acknowledged yet (the reader takes one off per PUBACK).
    inflight: Arc<AtomicU32>,
}

/// Starts the thread that reads a session's replies and sends its heartbeats.
fn spawn_reader(
    dialect: Dialect,
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    writer: Arc<Mutex<TcpStream>>,
    heartbeat: Option<u32>,
    links: Links,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("publisher".into()).spawn(move || {
        let Links { replies, stop, inflight } = links;
        let interval = heartbeat.map(|s| Duration::from_secs(u64::from(s.max(1))));
        let mut last_beat = Instant::now();
        let mut chunk = vec![0u8; 256 * 1024];
        while !stop.load(Ordering::Relaxed) {
            if let Some(interval) = interval {
                if last_beat.elapsed() >= interval {
                    last_beat = Instant::now();
                    let beat: &[u8] = match dialect {
                        Dialect::Mqtt(_) => &mqtt::PINGREQ,
                        _ => &package::HEARTBEAT,
                    };
                    if let Ok(mut w) = writer.lock() {
                        let _ = w.write_all(beat);
                    }
                }
            }
            let used = match dialect {
                Dialect::Pomelo => pomelo_replies(&buf, &replies),
                Dialect::Redis => redis_replies(&buf, &replies),
                Dialect::Mqtt(version) => mqtt_replies(&buf, version, &inflight, &replies),
            };
            let Ok(used) = used else {
                break;
            };
            buf.drain(..used);
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    })
}

/// Handles the whole packages in `buf`; returns the bytes used, or `Err` when the session ends.
fn pomelo_replies(buf: &[u8], replies: &Sender<Reply>) -> Result<usize, ()> {
    let mut used = 0;
    while let Some((pkg, n)) = package::decode(&buf[used..], MAX_READ).map_err(|_| ())? {
        match pkg.kind {
            PackageType::Data => {
                if let Ok(msg) = message::decode(pkg.body) {
                    if msg.kind == MessageType::Response {
                        let reply = match pomelo::json_number(msg.body, "code") {
                            Some(200) => Reply::Recipients(
                                pomelo::json_number(msg.body, "recipients").unwrap_or(0),
                            ),
                            _ => Reply::Refused(String::from_utf8_lossy(msg.body).into_owned()),
                        };
                        let _ = replies.send(reply);
                    }
                }
            }
            PackageType::Kick => {
                let reason = kick::decode(pkg.body).ok().flatten().unwrap_or_default();
                let _ = replies.send(Reply::Refused(format!("management kicked: {reason}")));
                return Err(());
            }
            _ => {}
        }
        used += n;
    }
    Ok(used)
}

/// Handles the whole RESP replies in `buf`; returns the bytes used.
fn redis_replies(buf: &[u8], replies: &Sender<Reply>) -> Result<usize, ()> {
    let mut used = 0;
    while let Some((reply, n)) = resp::decode(&buf[used..], MAX_READ).map_err(|_| ())? {
        let reply = match reply {
            RespReply::Item(Item::Int(n)) => Reply::Recipients(n.max(0) as u64),
            RespReply::Item(Item::Error(e)) => Reply::Refused(String::from_utf8_lossy(e).into()),
            other => Reply::Refused(format!("unexpected reply {other:?}")),
        };
        let _ = replies.send(reply);
        used += n;
    }
    Ok(used)
}

/// Handles the whole MQTT packets in `buf` (PUBACKs become replies); returns the bytes used,
/// or `Err` when the session ends.
fn mqtt_replies(
    buf: &[u8],
    version: mqtt::Version,
    inflight: &AtomicU32,
    replies: &Sender<Reply>,
) -> Result<usize, ()> {
    let mut used = 0;
    while let Some((packet, n)) = mqtt::decode(&buf[used..], version, MAX_READ).map_err(|_| ())? {
        match packet {
            MqttPacket::PubAck { reason, .. } => {
                let _ = inflight
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                let reply = match reason {
                    0x00 => Reply::Accepted,
                    0x10 => Reply::Recipients(0), // no matching subscribers
                    code => Reply::Refused(format!("PUBACK reason 0x{code:02x}")),
                };
                let _ = replies.send(reply);
            }
            MqttPacket::Disconnect { reason } => {
                let _ =
                    replies.send(Reply::Refused(format!("publisher DISCONNECT 0x{reason:02x}")));
                return Err(());
            }
            _ => {}
        }
        used += n;
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_pubacks_become_replies_and_free_the_window() {
        let (tx, rx) = mpsc::channel();
        let inflight = AtomicU32::new(3);
        // 5.0: success (short form), no matching subscribers, quota exceeded; then a partial.
        let buf =
            [0x40, 0x02, 0, 1, 0x40, 0x03, 0, 2, 0x10, 0x40, 0x03, 0, 3, 0x97, 0xd0, 0x00, 0x40];
        assert_eq!(mqtt_replies(&buf, mqtt::Version::V5, &inflight, &tx), Ok(buf.len() - 1));
        assert_eq!(inflight.load(Ordering::Relaxed), 0);
        assert_eq!(rx.try_recv().unwrap(), Reply::Accepted);
        assert_eq!(rx.try_recv().unwrap(), Reply::Recipients(0));
        assert_eq!(rx.try_recv().unwrap(), Reply::Refused("PUBACK reason 0x97".into()));
        assert!(rx.try_recv().is_err());
        assert_eq!(mqtt_replies(&[0xe0, 0x01, 0x8e], mqtt::Version::V5, &inflight, &tx), Err(()));
    }

    #[test]
    fn pomelo_responses_become_replies() {
        let (tx, rx) = mpsc::channel();
        let mut buf = BytesMut::new();
        for body in [
            r#"{"code":200,"msg":"push is ok.","recipients":19000}"#,
            r#"{"code":403,"msg":"not management"}"#,
        ] {
            let msg = message::Message::response(7, body.as_bytes());
            message::encode_package(&msg, &mut buf).unwrap();
        }
        buf.extend_from_slice(&package::HEARTBEAT);
        buf.extend_from_slice(&[4, 0, 0]); // a partial package stays
        let used = pomelo_replies(&buf, &tx).unwrap();
        assert_eq!(used, buf.len() - 3);
        assert_eq!(rx.try_recv().unwrap(), Reply::Recipients(19_000));
        assert!(matches!(rx.try_recv().unwrap(), Reply::Refused(r) if r.contains("403")));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn redis_replies_count_receivers() {
        let (tx, rx) = mpsc::channel();
        let buf = b":10000\r\n-ERR wrong\r\n:1";
        assert_eq!(redis_replies(buf, &tx), Ok(buf.len() - 2));
        assert_eq!(rx.try_recv().unwrap(), Reply::Recipients(10_000));
        assert_eq!(rx.try_recv().unwrap(), Reply::Refused("ERR wrong".into()));
    }
}
