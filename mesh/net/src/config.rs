//! Transport settings, every one defaulted.

use std::path::PathBuf;
use std::time::Duration;

/// Where a server's certificate comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerTls {
    /// A development CA and server certificate generated into (and reused from) this folder.
    DevCa {
        /// The folder (the data folder of `pwn up`).
        dir: PathBuf,
    },
    /// Operator-provided PEM files.
    Files {
        /// The certificate chain.
        cert_pem: PathBuf,
        /// The private key.
        key_pem: PathBuf,
    },
}

/// A player's flow-control window at the gateway: four of the largest frames, plenty for
/// logins, chat and gifts (game state travels in datagrams), and the most stream data one
/// player connection can hold in the gateway's memory.
pub const PLAYER_STREAM_WINDOW_BYTES: u64 = 4 * (pwn_proto::codec::FRAME_SIZE_MAX as u64 + 4);

/// Settings shared by servers and clients.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportConfig {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Clients send keep-alive PINGs at this period (well inside the idle timeout); `None`
    /// lets an idle connection time out.
    pub keep_alive: Option<Duration>,
    /// A handshake (QUIC and ours) must finish within this.
    pub handshake_timeout: Duration,
    /// Handshakes in flight above which the server sends Retry packets (address validation):
    /// s2n-quic sends no Retry at all unless this is set.
    pub inflight_handshakes_max: usize,
    /// Datagrams queued for sending per connection; older ones are dropped first (a game wants
    /// the freshest state, not a backlog).
    pub datagram_send_queue: usize,
    /// Datagrams queued on receipt per connection before the oldest are dropped.
    pub datagram_recv_queue: usize,
    /// Bidirectional streams a peer may have open at once.
    pub streams_max: u64,
    /// Unidirectional streams a peer may have open at once (services' notifications use
    /// them; players have none).
    pub uni_streams_max: u64,
    /// Bytes a peer may have in flight to us, unread, over the whole connection and on any one
    /// stream (QUIC flow control): what a peer can park in our memory through streams.
    /// `None` keeps s2n-quic's default (3.75 MB, sized for 150 Mbit/s at 100 ms).
    pub stream_window_bytes: Option<u64>,
    /// Bytes buffered for sending on one stream before a send waits (what a peer that stops
    /// reading can make us hold, beyond our own queues). `None` keeps s2n-quic's 4 MiB.
    pub send_buffer_bytes: Option<u32>,
    /// Connections a server holds at once; further ones are refused with `Unavailable`.
    pub connections_max: usize,
}

impl TransportConfig {
    /// For a server players connect to: as the default, but a player may open only the control
    /// stream (`streams_max` 1, no unidirectional streams), so a client cannot park data in
    /// streams nothing reads, and its window and our send buffer towards it are
    /// [`PLAYER_STREAM_WINDOW_BYTES`].
    pub fn players() -> Self {
        Self {
            streams_max: 1,
            uni_streams_max: 0,
            stream_window_bytes: Some(PLAYER_STREAM_WINDOW_BYTES),
            send_buffer_bytes: Some(PLAYER_STREAM_WINDOW_BYTES as u32),
            ..Self::default()
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(15),
            keep_alive: Some(Duration::from_secs(5)),
            handshake_timeout: Duration::from_secs(5),
            inflight_handshakes_max: 256,
            datagram_send_queue: 256,
            datagram_recv_queue: 256,
            streams_max: 100,
            uni_streams_max: 100,
            stream_window_bytes: None,
            send_buffer_bytes: None,
            connections_max: 10_000,
        }
    }
}

/// What the server checks peers against and tells them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// `pwn_sim::build_digest` of this build and configuration.
    pub sim_digest: u64,
    /// Simulation rate announced in the `Welcome`.
    pub tick_hz: u16,
}
