//! Encode once, fan out to cores.
//!
//! A push to a channel is encoded once into a [`Frame`], shared by reference count. Each core
//! that holds members of the channel gets one inbox command carrying the frame and writes the same
//! bytes to each of its local members: no per-recipient encoding, allocation or lock.
//!
//! Server WebSocket frames are unmasked, so the WebSocket form of a push is the same for every
//! WebSocket client: the package behind one frame header. Both forms live in one buffer, the
//! header just before the package, so a frame costs one allocation.
//!
//! Server WebSocket frames are unmasked, so the WebSocket form of a push is the same for every
//! WebSocket client: the package behind one frame header. Both forms live in one buffer, the
//! header just before the package, so a frame costs one allocation.

use bytes::{Bytes, BytesMut};

use crate::channel::Channel;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::HEADER_LEN;
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::AppId;
use crate::reactor::conn::Transport;
use crate::reactor::inbox::Command;

/// An encoded push, ready for every recipient of either transport.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The Pomelo package, as raw-TCP clients receive it.
    tcp: Bytes,
    /// The same package behind a binary WebSocket frame header.
    websocket: Bytes,
}

impl Frame {
    /// Encodes a Pomelo PUSH of `body` on `route` as a whole DATA package.
    pub fn push(route: Route<'_>, body: &[u8]) -> Result<Frame, ProtocolError> {
        let msg = Message { kind: MessageType::Push, id: 0, route, body };
        let package_len = HEADER_LEN + message::encoded_len(&msg);
        let header_len = ws::header_len(package_len);
        let mut out = BytesMut::with_capacity(header_len + package_len);
        ws::encode_header(true, OpCode::Binary, package_len, &mut out);
        message::encode_package(&msg, &mut out)?;
        let websocket = out.freeze();
        Ok(Frame { tcp: websocket.slice(header_len..), websocket })
    }

    /// The bytes a client on `transport` receives.
    pub fn bytes(&self, transport: Transport) -> &Bytes {
        match transport {
            Transport::Tcp => &self.tcp,
            Transport::WebSocket => &self.websocket,
        }
    }
}

/// Hands `frame` to every core that holds members of `app`'s channel, one command per core,
/// through `dispatch(core, command)`. Returns how many members those cores held.
pub fn fan_out(
    app: AppId,
    channel: &Channel,
    frame: &Frame,
    mut dispatch: impl FnMut(usize, Command),
) -> usize {
    let mut recipients = 0;
    for (core, members) in channel.cores_with_members() {
        recipients += members;
        dispatch(core, Command::Broadcast { app, frame: frame.clone() });
    }
    recipients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_share_one_buffer() {
        let frame = Frame::push(Route::Name("onMsg"), br#"{"msg":"hi"}"#).unwrap();
        let push = hex("04 00 00 13 06 05 6f 6e 4d 73 67 7b 22 6d 73 67 22 3a 22 68 69 22 7d");
        assert_eq!(&frame.bytes(Transport::Tcp)[..], &push[..]);
        let ws = frame.bytes(Transport::WebSocket);
        assert_eq!(&ws[..2], &[0x82, push.len() as u8]);
        assert_eq!(&ws[2..], &push[..]);
        assert_eq!(ws[2..].as_ptr(), frame.bytes(Transport::Tcp).as_ptr());
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }
}
