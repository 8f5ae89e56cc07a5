//! The client side of MQTT 3.1.1 and 5.0 that a subscriber and a publisher need, for the runs
//! against shaddock's MQTT frontend and against `mosquitto`.
//!
//! ```text
//! client:  CONNECT     10 len 00 04 "MQTT" level flags keepalive [props] id [user] [pass]
//!          SUBSCRIBE   82 len id [props] filter options
//!          PUBLISH     3x len topic [id] [props] payload        (the publisher)
//!          PUBACK      40 02 id                                  (5.0: reason 0x00 left out)
//!          PINGREQ     c0 00          DISCONNECT  e0 00
//! server:  CONNACK     20 len flags code [props: Receive Maximum, Server Keep Alive, ...]
//!          SUBACK      90 len id [props] codes
//!          PUBLISH     3x len topic [id] [props] payload
//!          PUBACK      40 len id [reason [props]]
//!          PINGRESP    d0 00          DISCONNECT  e0 len [reason [props]]
//! ```
//!
//! Written here rather than taken from a crate: the maintained client crates (`rumqttc`,
//! `paho-mqtt`) bring their own runtime or event loop and socket, and their packet layers
//! (`mqttbytes`) decode into owned buffers; conn-flood drives 19,000 sockets from one mio loop
//! and reads every packet in place from its scratch buffer. shaddock's own codec
//! (`shaddock::protocol::mqtt`) is the other direction (decodes client packets, encodes server
//! ones); the tests use it as a second opinion on these bytes.
//!
//! # Invariants
//! - [`decode`] borrows from its input and never allocates; `Ok(None)` means "need more bytes".
//! - A packet whose remaining length exceeds the caller's limit is refused from its fixed header
//!   alone, before its body is awaited.
//! - Encoders append one whole packet.

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xc0, 0x00];
/// DISCONNECT (3.1.1; in 5.0 the same bytes mean reason 0x00, normal disconnection).
pub const DISCONNECT: [u8; 2] = [0xe0, 0x00];

/// 5.0 property identifiers conn-flood reads.
const PROP_SERVER_KEEP_ALIVE: u8 = 0x13;
const PROP_RECEIVE_MAXIMUM: u8 = 0x21;

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// 3.1.1, protocol level 4.
    V311,
    /// 5.0, protocol level 5.
    V5,
}

impl Version {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }

    /// The version's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5.0",
        }
    }
}

/// What goes into a CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct Connect<'a> {
    /// The version to speak.
    pub version: Version,
    /// The client identifier.
    pub client_id: &'a str,
    /// The user name (shaddock: the apikey).
    pub username: Option<&'a str>,
    /// The password (shaddock: the app's secret, for a management session).
    pub password: Option<&'a [u8]>,
    /// Keep alive, seconds.
    pub keep_alive: u16,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean: bool,
    /// 5.0: the Receive Maximum property, if sent.
    pub receive_maximum: Option<u16>,
}

/// A server packet, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNACK: `code` is the 3.1.1 return code or the 5.0 reason code (0 = accepted).
    ConnAck {
        /// Session present.
        session_present: bool,
        /// Return / reason code.
        code: u8,
        /// 5.0: the server's Receive Maximum.
        receive_maximum: Option<u16>,
        /// 5.0: the Server Keep Alive.
        server_keep_alive: Option<u16>,
    },
    /// SUBACK: the return / reason code of the first filter.
    SubAck {
        /// The SUBSCRIBE's packet id.
        packet_id: u16,
        /// Granted QoS (0..=2) or failure (0x80 and up).
        code: u8,
    },
    /// PUBLISH.
    Publish {
        /// QoS, 0..=2.
        qos: u8,
        /// Duplicate flag.
        dup: bool,
        /// Retain flag.
        retain: bool,
        /// The topic name.
        topic: &'a [u8],
        /// Packet id (0 at QoS 0).
        packet_id: u16,
        /// The payload.
        payload: &'a [u8],
    },
    /// PUBACK: `reason` is 0 when absent (3.1.1 has none).
    PubAck {
        /// The PUBLISH's packet id.
        packet_id: u16,
        /// 5.0 reason code.
        reason: u8,
    },
    /// PINGRESP.
    PingResp,
    /// DISCONNECT from the server: `reason` is 0 when absent.
    Disconnect {
        /// 5.0 reason code.
        reason: u8,
    },
    /// Any other packet, by type (1..=15).
    Other(u8),
}

/// Why a server packet is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttFault {
    /// A field is missing, too long, or has a value the protocol forbids.
    Malformed(&'static str),
    /// The remaining length is over the limit.
    TooLarge(usize),
}

/// Appends a CONNECT.
pub fn encode_connect(c: &Connect<'_>, out: &mut BytesMut) {
    let mut body = BytesMut::with_capacity(64);
    put_str(b"MQTT", &mut body);
    body.put_u8(c.version.level());
    let flags = u8::from(c.clean) << 1
        | u8::from(c.username.is_some()) << 7
        | u8::from(c.password.is_some()) << 6;
    body.put_u8(flags);
    body.put_u16(c.keep_alive);
    if c.version == Version::V5 {
        match c.receive_maximum {
            Some(max) => {
                put_varint(3, &mut body);
                body.put_u8(PROP_RECEIVE_MAXIMUM);
                body.put_u16(max);
            }
            None => body.put_u8(0),
        }
    }
    put_str(c.client_id.as_bytes(), &mut body);
    if let Some(user) = c.username {
        put_str(user.as_bytes(), &mut body);
    }
    if let Some(password) = c.password {
        put_str(password, &mut body);
    }
    put_packet(0x10, &body, out);
}

/// Appends a SUBSCRIBE of one filter at `qos` (5.0: no properties, default options).
pub fn encode_subscribe(
    version: Version,
    packet_id: u16,
    filter: &str,
    qos: u8,
    out: &mut BytesMut,
) {
    let mut body = BytesMut::with_capacity(filter.len() + 8);
    body.put_u16(packet_id);
    if version == Version::V5 {
        body.put_u8(0);
    }
    put_str(filter.as_bytes(), &mut body);
    body.put_u8(qos & 3);
    put_packet(0x82, &body, out);
}

/// Appends a PUBLISH (no DUP, no RETAIN; the packet id only above QoS 0; 5.0: no properties).
pub fn encode_publish(
    version: Version,
    topic: &str,
    qos: u8,
    packet_id: u16,
    payload: &[u8],
    out: &mut BytesMut,
) {
    let remaining = 2
        + topic.len()
        + if qos > 0 { 2 } else { 0 }
        + usize::from(version == Version::V5)
        + payload.len();
    out.reserve(remaining + 5);
    out.put_u8(0x30 | (qos & 3) << 1);
    put_varint(remaining, out);
    put_str(topic.as_bytes(), out);
    if qos > 0 {
        out.put_u16(packet_id);
    }
    if version == Version::V5 {
        out.put_u8(0);
    }
    out.extend_from_slice(payload);
}

/// Appends a PUBACK with success (the same bytes in both versions: 5.0 may leave out reason
/// 0x00 and the properties).
pub fn encode_puback(packet_id: u16, out: &mut BytesMut) {
    out.put_u8(0x40);
    out.put_u8(2);
    out.put_u16(packet_id);
}

/// Decodes one packet from the front of `buf`; returns it and the bytes used.
pub fn decode(
    buf: &[u8],
    version: Version,
    max_remaining: usize,
) -> Result<Option<(Packet<'_>, usize)>, MqttFault> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let Some((remaining, header)) = take_varint(&buf[1..])? else {
        return Ok(None);
    };
    if remaining > max_remaining {
        return Err(MqttFault::TooLarge(remaining));
    }
    let header = header + 1;
    let Some(body) = buf.get(header..header + remaining) else {
        return Ok(None);
    };
    let used = header + remaining;
    let v5 = version == Version::V5;
    let mut r = Reader { buf: body, at: 0 };
    let packet = match first >> 4 {
        2 => {
            let flags = r.u8("CONNACK flags")?;
            let code = r.u8("CONNACK code")?;
            let (mut receive_maximum, mut server_keep_alive) = (None, None);
            if v5 && !r.done() {
                let props = r.properties()?;
                walk_properties(props, |id, value| match (id, value) {
                    (PROP_RECEIVE_MAXIMUM, [a, b]) => {
                        receive_maximum = Some(u16::from_be_bytes([*a, *b]))
                    }
                    (PROP_SERVER_KEEP_ALIVE, [a, b]) => {
                        server_keep_alive = Some(u16::from_be_bytes([*a, *b]))
                    }
                    _ => {}
                })?;
            }
            Packet::ConnAck {
                session_present: flags & 1 == 1,
                code,
                receive_maximum,
                server_keep_alive,
            }
        }
        3 => {
            let qos = (first >> 1) & 3;
            if qos == 3 {
                return Err(MqttFault::Malformed("PUBLISH QoS 3"));
            }
            let topic = r.string("PUBLISH topic")?;
            let packet_id = if qos > 0 { r.u16("PUBLISH packet id")? } else { 0 };
            if v5 {
                r.properties()?;
            }
            Packet::Publish {
                qos,
                dup: first & 0x08 != 0,
                retain: first & 0x01 != 0,
                topic,
                packet_id,
                payload: r.rest(),
            }
        }
        4 => {
            let packet_id = r.u16("PUBACK packet id")?;
            let reason = if v5 && !r.done() { r.u8("PUBACK reason")? } else { 0 };
            Packet::PubAck { packet_id, reason }
        }
        9 => {
            let packet_id = r.u16("SUBACK packet id")?;
            if v5 {
                r.properties()?;
            }
            Packet::SubAck { packet_id, code: r.u8("SUBACK code")? }
        }
        13 => Packet::PingResp,
        14 => Packet::Disconnect {
            reason: if v5 && !r.done() { r.u8("DISCONNECT reason")? } else { 0 },
        },
        0 => return Err(MqttFault::Malformed("packet type 0")),
        other => Packet::Other(other),
    };
    Ok(Some((packet, used)))
}

/// Reads fields from a packet body.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MqttFault> {
        let bytes = self.buf.get(self.at..self.at + n).ok_or(MqttFault::Malformed(what))?;
        self.at += n;
        Ok(bytes)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, MqttFault> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, MqttFault> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a [u8], MqttFault> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// A 5.0 property block: its bytes.
    fn properties(&mut self) -> Result<&'a [u8], MqttFault> {
        let (len, n) =
            take_varint(&self.buf[self.at..])?.ok_or(MqttFault::Malformed("property length"))?;
        self.at += n;
        self.take(len, "properties")
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.at..];
        self.at = self.buf.len();
        rest
    }
}

/// Calls `each(id, value)` for every property of a 5.0 block (strings and binary data with
/// their length prefix left out; a user property as its two prefixed strings).
fn walk_properties(props: &[u8], mut each: impl FnMut(u8, &[u8])) -> Result<(), MqttFault> {
    let mut r = Reader { buf: props, at: 0 };
    while !r.done() {
        let id = r.u8("property id")?;
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => r.take(1, "property")?,
            0x13 | 0x21 | 0x22 | 0x23 => r.take(2, "property")?,
            0x02 | 0x11 | 0x18 | 0x27 => r.take(4, "property")?,
            0x0b => {
                let (_, n) =
                    take_varint(&props[r.at..])?.ok_or(MqttFault::Malformed("property"))?;
                r.take(n, "property")?
            }
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => r.string("property")?,
            0x26 => {
                let start = r.at;
                r.string("user property")?;
                r.string("user property")?;
                &props[start..r.at]
            }
            _ => return Err(MqttFault::Malformed("unknown property")),
        };
        each(id, value);
    }
    Ok(())
}

/// A variable byte integer at the front of `buf`: its value and length, `None` if incomplete.
fn take_varint(buf: &[u8]) -> Result<Option<(usize, usize)>, MqttFault> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(MqttFault::Malformed("remaining length over 4 bytes"))
    } else {
        Ok(None)
    }
}

fn put_varint(mut v: usize, out: &mut BytesMut) {
    loop {
        let byte = (v % 128) as u8;
        v /= 128;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

fn put_str(s: &[u8], out: &mut BytesMut) {
    out.put_u16(s.len() as u16);
    out.extend_from_slice(s);
}

fn put_packet(first: u8, body: &[u8], out: &mut BytesMut) {
    out.put_u8(first);
    put_varint(body.len(), out);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests;
