//! The ground floor: the small ids every part of the server passes around.
//!
//! Nothing here imports anything of the crate. A [`ConnId`] names a connection anywhere in the
//! server, an [`AppId`] an app (and its push channel), and a [`WireForm`] how a connection's
//! bytes are shaped (a frontend's protocol over a transport), which is also how a push must be
//! encoded for it.

/// A connection anywhere in the server: its core, slab index and generation, packed into 8 bytes
/// (core 8 bits, generation 24 bits, slab index 32 bits) so that presence entries stay small.
/// The generation makes a stale id miss a connection that reused the slot (until the same slot
/// has been reused 16 million times).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// Generations are counted modulo 2^24.
    pub const GENERATION_MASK: u32 = 0xFF_FFFF;

    pub fn new(core: usize, index: usize, generation: u32) -> ConnId {
        debug_assert!(core <= 0xFF && index <= u32::MAX as usize);
        let core = (core as u64 & 0xFF) << 56;
        let generation = u64::from(generation & ConnId::GENERATION_MASK) << 32;
        ConnId(core | generation | (index as u64 & 0xFFFF_FFFF))
    }

    pub fn core(self) -> usize {
        (self.0 >> 56) as usize
    }

    pub fn index(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }

    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32 & ConnId::GENERATION_MASK
    }
}

impl std::fmt::Debug for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnId({self})")
    }
}

/// `core:index#generation`, as the logs show a connection.
impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}#{}", self.core(), self.index(), self.generation())
    }
}

/// An app's slot in the app table; also names the app's push channel. A slot keeps its apikey
/// for the server's life (a reload adds apps in free slots, and a removed app keeps its own),
/// so an id never changes meaning while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(pub u16);

impl AppId {
    /// No app: what a session holds before it names one. Never an app's id (there are at
    /// most `u16::MAX` apps, numbered from 0).
    pub const NONE: AppId = AppId(u16::MAX);

    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// The slot number, as the logs show an app beside its apikey.
impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a connection's frontend protocol travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The protocol's own bytes on the TCP stream.
    Tcp,
    /// Inside binary WebSocket messages.
    WebSocket,
    /// Inside HTTP long-polling responses (Socket.IO): the session has no socket of its own,
    /// each poll is answered on whichever connection carried it.
    Polling,
}

/// The protocol a client speaks on the client port (see `session`'s frontend contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// NetEase Pomelo's hybrid protocol.
    Pomelo,
    /// MQTT 3.1.1.
    Mqtt311,
    /// MQTT 5.0.
    Mqtt5,
    /// Pomelo's messages over socket.io 0.9 (Pomelo 0.x's sioconnector).
    SocketIo09,
    /// Pomelo's messages over socket.io 1.x–2.x (Engine.IO 3).
    EngineIo3,
    /// Pomelo's messages over socket.io 3.x–4.x (Engine.IO 4).
    EngineIo4,
}

/// A frontend over a transport: the shape of a connection's bytes, and so the form a push takes
/// on the wire for it. A push is encoded once per form that some recipient uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireForm {
    /// Pomelo packages on raw TCP.
    PomeloTcp,
    /// Each Pomelo package in its own binary WebSocket message.
    PomeloWebSocket,
    /// MQTT 3.1.1 packets on raw TCP.
    Mqtt311Tcp,
    /// MQTT 3.1.1 packets in binary WebSocket messages (subprotocol `mqtt`).
    Mqtt311WebSocket,
    /// MQTT 5.0 packets on raw TCP.
    Mqtt5Tcp,
    /// MQTT 5.0 packets in binary WebSocket messages.
    Mqtt5WebSocket,
    /// socket.io 0.9 message packets (`3:::...`), each in a text WebSocket message.
    SocketIo09WebSocket,
    /// Engine.IO message packets holding a socket.io `message` event (`42["message",...]`),
    /// each in a text WebSocket message: the same bytes for Engine.IO 3 and 4.
    EngineIoWebSocket,
    /// socket.io 0.9 message packets in a polling response, each framed
    /// (`\u{fffd}<length>\u{fffd}3:::...`).
    SocketIo09Polling,
    /// Engine.IO 3 message packets in a polling response, each behind its length (`<n>:42[...]`).
    EngineIo3Polling,
    /// Engine.IO 4 message packets in a polling response, each behind a record separator
    /// (`\x1e42[...]`; a response drops the separator in front of its first packet).
    EngineIo4Polling,
}

impl WireForm {
    pub const ALL: [WireForm; 11] = [
        WireForm::PomeloTcp,
        WireForm::PomeloWebSocket,
        WireForm::Mqtt311Tcp,
        WireForm::Mqtt311WebSocket,
        WireForm::Mqtt5Tcp,
        WireForm::Mqtt5WebSocket,
        WireForm::SocketIo09WebSocket,
        WireForm::EngineIoWebSocket,
        WireForm::SocketIo09Polling,
        WireForm::EngineIo3Polling,
        WireForm::EngineIo4Polling,
    ];
    pub const COUNT: usize = WireForm::ALL.len();

    /// The form of `frontend` over `transport`. Socket.IO has no form of its own on raw TCP
    /// (its packets always travel inside WebSocket messages or HTTP bodies): asked for one, it
    /// gets its WebSocket form; Pomelo and MQTT have none over polling: asked for one, they get
    /// their TCP form.
    pub fn new(frontend: Frontend, transport: Transport) -> WireForm {
        match (frontend, transport) {
            (Frontend::SocketIo09, Transport::Polling) => WireForm::SocketIo09Polling,
            (Frontend::EngineIo3, Transport::Polling) => WireForm::EngineIo3Polling,
            (Frontend::EngineIo4, Transport::Polling) => WireForm::EngineIo4Polling,
            (Frontend::SocketIo09, _) => WireForm::SocketIo09WebSocket,
            (Frontend::EngineIo3 | Frontend::EngineIo4, _) => WireForm::EngineIoWebSocket,
            (Frontend::Pomelo, Transport::WebSocket) => WireForm::PomeloWebSocket,
            (Frontend::Pomelo, _) => WireForm::PomeloTcp,
            (Frontend::Mqtt311, Transport::WebSocket) => WireForm::Mqtt311WebSocket,
            (Frontend::Mqtt311, _) => WireForm::Mqtt311Tcp,
            (Frontend::Mqtt5, Transport::WebSocket) => WireForm::Mqtt5WebSocket,
            (Frontend::Mqtt5, _) => WireForm::Mqtt5Tcp,
        }
    }

    /// A dense index, `0..COUNT`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn frontend(self) -> Frontend {
        match self {
            WireForm::PomeloTcp | WireForm::PomeloWebSocket => Frontend::Pomelo,
            WireForm::Mqtt311Tcp | WireForm::Mqtt311WebSocket => Frontend::Mqtt311,
            WireForm::Mqtt5Tcp | WireForm::Mqtt5WebSocket => Frontend::Mqtt5,
            WireForm::SocketIo09WebSocket | WireForm::SocketIo09Polling => Frontend::SocketIo09,
            // The same bytes serve both versions' WebSocket members.
            WireForm::EngineIoWebSocket | WireForm::EngineIo4Polling => Frontend::EngineIo4,
            WireForm::EngineIo3Polling => Frontend::EngineIo3,
        }
    }

    pub fn transport(self) -> Transport {
        match self {
            WireForm::PomeloTcp | WireForm::Mqtt311Tcp | WireForm::Mqtt5Tcp => Transport::Tcp,
            WireForm::PomeloWebSocket
            | WireForm::Mqtt311WebSocket
            | WireForm::Mqtt5WebSocket
            | WireForm::SocketIo09WebSocket
            | WireForm::EngineIoWebSocket => Transport::WebSocket,
            WireForm::SocketIo09Polling
            | WireForm::EngineIo3Polling
            | WireForm::EngineIo4Polling => Transport::Polling,
        }
    }
}

/// A set of [`WireForm`]s, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forms(u16);

impl Forms {
    pub const NONE: Forms = Forms(0);

    pub fn all() -> Forms {
        WireForm::ALL.into_iter().fold(Forms::NONE, Forms::with)
    }

    pub fn one(form: WireForm) -> Forms {
        Forms::NONE.with(form)
    }

    pub fn with(self, form: WireForm) -> Forms {
        Forms(self.0 | 1 << form.index())
    }

    pub fn contains(self, form: WireForm) -> bool {
        self.0 & 1 << form.index() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Where a push came from: the edge that called the push service. Every edge gets the same
/// answers, limits and counters; only this label tells them apart in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// A management session on the client port (Pomelo `pushAll` / `pushByClientId`).
    Socket,
    /// The HTTP push API on the control port.
    Http,
    /// Another node of the cluster, over the Redis bus (`[cluster]`).
    Cluster,
}

impl Edge {
    pub const ALL: [Edge; 3] = [Edge::Socket, Edge::Http, Edge::Cluster];

    /// The `source` label of `shaddock_pushes_total`.
    pub fn label(self) -> &'static str {
        match self {
            Edge::Socket => "socket",
            Edge::Http => "http",
            Edge::Cluster => "cluster",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_ids_round_trip() {
        let id = ConnId::new(3, 70_000, ConnId::GENERATION_MASK + 5);
        assert_eq!((id.core(), id.index(), id.generation()), (3, 70_000, 4));
        assert_eq!(std::mem::size_of::<ConnId>(), 8);
    }

    #[test]
    fn forms_are_a_set() {
        assert!(Forms::NONE.is_empty());
        let tcp = Forms::one(WireForm::PomeloTcp);
        assert!(tcp.contains(WireForm::PomeloTcp) && !tcp.contains(WireForm::PomeloWebSocket));
        assert!(WireForm::ALL.into_iter().all(|f| Forms::all().contains(f)));
        for form in WireForm::ALL {
            assert_eq!(WireForm::new(form.frontend(), form.transport()), form);
        }
    }
}
