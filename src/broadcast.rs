//! Encode once, fan out to cores.
//!
//! A push to a channel is encoded once into a [`Frame`], shared by reference count. Each core
//! that holds members of the channel gets one inbox command carrying the frame and writes the same
//! bytes to each of its local members: no per-recipient encoding, allocation or lock.

use bytes::{Bytes, BytesMut};

use crate::channel::Channel;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::push::AppId;
use crate::reactor::inbox::Command;

/// An encoded push, ready for every recipient.
#[derive(Debug, Clone)]
pub struct Frame {
    tcp: Bytes,
}

impl Frame {
    /// Encodes a Pomelo PUSH of `body` on `route` as a whole DATA package.
    pub fn push(route: Route<'_>, body: &[u8]) -> Result<Frame, ProtocolError> {
        let msg = Message {
            kind: MessageType::Push,
            id: 0,
            route,
            body,
        };
        let mut out = BytesMut::with_capacity(4 + message::encoded_len(&msg));
        message::encode_package(&msg, &mut out)?;
        Ok(Frame { tcp: out.freeze() })
    }

    /// The package as raw-TCP clients receive it.
    pub fn tcp(&self) -> &Bytes {
        &self.tcp
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
        dispatch(
            core,
            Command::Broadcast {
                app,
                frame: frame.clone(),
            },
        );
    }
    recipients
}
