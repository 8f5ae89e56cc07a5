//! Whole connections: bytes through `session::transport::handle_input` for a fresh session of
//! the sessions' test world, as the reactor hands them over.
//!
//! ```text
//! input:  flags | cut lengths (flags >> 4 bytes) | the connection's bytes
//!   flags bit 0: the world with a route dictionary and the protos of tests/data/protos/
//!                (else no dictionary, no protos: every body is JSON)
//!   cut lengths: the first pieces' lengths (an empty piece is skipped, as the reactor never
//!                hands over no bytes); the rest comes as one last piece
//! ```
//!
//! The connection runs twice, each in a world of its own: once with its bytes in one piece,
//! once cut into the pieces. A stream decoder does not care where its input was cut, so both
//! must send the same bytes, end with the same flow and hand the push service's outlet the same
//! effects. Then the deadline passes, the session leaves, and no client is left online.

use std::sync::OnceLock;

use bytes::BytesMut;
use serde_json::Value;

use crate::ids::{AppId, ConnId};
use crate::protocol::pomelo::RouteDict;
use crate::push::testing::TestApps;
use crate::session::Flow;
use crate::session::pomelo::route::{HANDLER_ROUTES, PUSH_ROUTES};
use crate::session::testing::{Conn, World};
use crate::stats::KickReason;

/// The second every piece arrives at (the handshake deadline is later).
const NOW: u32 = 1;

/// What one run of a connection did.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Everything the session wrote for its own connection, its kick and timeout included.
    sent: Vec<u8>,
    /// The flow that ended the input, or `Continue`.
    flow: Flow,
    /// The flow after the deadline passed, for a connection whose input did not end it.
    timeout: Option<Flow>,
    /// How many broadcasts and deliveries the outlet was handed, and the kicks.
    broadcasts: usize,
    deliveries: usize,
    kicks: Vec<(ConnId, KickReason)>,
}

/// One connection, in one piece and then in the pieces the input names.
pub fn session(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let protos = flags & 1 != 0;
    let (cuts, stream) = rest.split_at(usize::from(flags >> 4).min(rest.len()));
    let whole = run(protos, &[stream]);
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut left = stream;
    for &len in cuts {
        let (piece, tail) = left.split_at(usize::from(len).min(left.len()));
        pieces.push(piece);
        left = tail;
    }
    pieces.push(left);
    let cut = run(protos, &pieces);
    assert_eq!(whole, cut, "the same bytes, cut into pieces of {cuts:?}");
}

/// Feeds the pieces to a fresh session, then lets its deadline pass and has it leave.
fn run(protos: bool, pieces: &[&[u8]]) -> Outcome {
    let mut world = world(protos);
    let mut conn = Conn::new(1);
    let mut sent = Vec::new();
    let mut flow = Flow::Continue;
    for piece in pieces.iter().filter(|piece| !piece.is_empty()) {
        let (out, then) = conn.input(&mut world, NOW, piece);
        sent.extend_from_slice(&out);
        flow = then;
        if flow != Flow::Continue {
            break;
        }
    }
    let mut out = BytesMut::new();
    let mut timeout = None;
    if flow == Flow::Continue {
        let deadline = conn.session.deadline(&world.settings).saturating_add(1);
        timeout = Some(conn.session.handle_timeout(deadline, &world.settings, &mut out));
    }
    if let Some(Flow::Kick(kick)) = timeout.as_ref().or(Some(&flow)) {
        conn.session.encode_kick(kick, &mut out);
    }
    sent.extend_from_slice(&out);
    let _ = conn.leave(&mut world);
    for app in [AppId(0), AppId(1)] {
        assert_eq!(world.push.clients(app, None, 1).1, 0, "a client of {app:?} left online");
    }
    Outcome {
        sent,
        flow,
        timeout,
        broadcasts: world.out.broadcasts.len(),
        deliveries: world.out.deliveries.len(),
        kicks: world.out.kicks,
    }
}

/// A fresh world: the plain one, or one with a dictionary and the test protos.
fn world(protos: bool) -> World {
    if !protos {
        return World::new();
    }
    static PROTOS: OnceLock<(Value, Value)> = OnceLock::new();
    let (server, client) = PROTOS.get_or_init(|| {
        let parse = |text: &str| -> Value { serde_json::from_str(text).expect("test protos JSON") };
        (
            parse(include_str!("../../tests/data/protos/serverProtos.json")),
            parse(include_str!("../../tests/data/protos/clientProtos.json")),
        )
    });
    let dict = RouteDict::new(HANDLER_ROUTES, PUSH_ROUTES).expect("the handler dictionary");
    World::of(TestApps {
        dict: Some(dict),
        server_protos: Some(server.clone()),
        client_protos: Some(client.clone()),
        ..TestApps::default()
    })
}
