//! Servers and clients: binding, connecting, and the PWN handshake on top of QUIC's.

use crate::config::{ServiceIdentity, TransportConfig};
use crate::conn::{Conn, ConnTx, DatagramRx, PeerInfo, StreamRx};
use crate::error::{ConnError, from_connection_error};
use crate::metrics_names::{self as m, MetricsSubscriber};
use crate::tls::ServerCert;
use pwn_proto::handshake::answer_hello;
use pwn_proto::{Hello, Message, PROTOCOL_VERSION, PeerRole, RefuseCode};
use s2n_quic::client::Connect;
use s2n_quic::provider::datagram::default::Endpoint as DatagramEndpoint;
use std::net::SocketAddr;

/// Why an endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the QUIC endpoint")]
pub struct StartError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn start_err(e: impl std::error::Error + Send + Sync + 'static) -> StartError {
    StartError(Box::new(e))
}

fn limits(cfg: &TransportConfig) -> Result<s2n_quic::provider::limits::Limits, StartError> {
    let limits = s2n_quic::provider::limits::Limits::new()
        .with_max_idle_timeout(cfg.idle_timeout)
        .and_then(|l| l.with_max_handshake_duration(cfg.handshake_timeout))
        .and_then(|l| l.with_max_keep_alive_period(cfg.keep_alive.unwrap_or(cfg.idle_timeout)))
        .and_then(|l| l.with_max_open_remote_bidirectional_streams(cfg.streams_max))
        .and_then(|l| l.with_max_open_remote_unidirectional_streams(cfg.uni_streams_max))
        .and_then(|l| match cfg.send_buffer_bytes {
            Some(b) => l.with_max_send_buffer_size(b),
            None => Ok(l),
        })
        .map_err(start_err)?;
    match cfg.stream_window_bytes {
        None => Ok(limits),
        Some(w) => limits
            .with_data_window(w)
            .and_then(|l| l.with_bidirectional_remote_data_window(w))
            .and_then(|l| l.with_bidirectional_local_data_window(w))
            .and_then(|l| l.with_unidirectional_data_window(w))
            .map_err(start_err),
    }
}

/// The protocol's ALPN identifier, `pwn/` and the protocol version: QUIC requires one. A peer
/// offering neither it nor one of [`legacy_alpns`] fails the TLS handshake (s2n-quic answers
/// nothing: the peer sees its own handshake timeout).
pub fn alpn() -> String {
    format!("pwn/{PROTOCOL_VERSION}")
}

/// What PWN builds before protocol 5 offered (s2n-quic's default ALPN, `h3`). Servers accept
/// it, and every earlier `pwn/N` ([`legacy_alpns`]), only so that such a client can be told
/// why it is refused: the PWN handshake then answers `Refused(VersionMismatch)` naming both
/// protocols, whatever the client says.
pub const LEGACY_ALPN: &str = "h3";

/// The ALPNs of earlier PWN builds, newest first: `pwn/N` for every earlier protocol version
/// from 5 (the first with an ALPN of its own), then [`LEGACY_ALPN`].
pub fn legacy_alpns() -> Vec<String> {
    let mut out: Vec<String> = (5..PROTOCOL_VERSION).rev().map(|v| format!("pwn/{v}")).collect();
    out.push(LEGACY_ALPN.to_owned());
    out
}

/// Who may open connections to a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Anyone who trusts the server (players; authentication happens inside the connection).
    #[default]
    Anyone,
    /// Only peers presenting a certificate signed by this CA (PEM) for
    /// [`crate::tls::SERVICE_NAME`]: mutual TLS between services. A peer without one fails the
    /// TLS handshake.
    Services {
        /// The CA that signs service certificates.
        ca_pem: String,
    },
}

/// Accepts a client certificate only for the services' name (`ClientAuth::Services`).
struct ServiceNameOnly;

impl s2n_quic::provider::tls::default::callbacks::VerifyHostNameCallback for ServiceNameOnly {
    fn verify_host_name(&self, host_name: &str) -> bool {
        host_name == crate::tls::SERVICE_NAME
    }
}

/// The server's TLS: its certificate, and client certificates as `auth` requires.
fn server_tls(cert: &ServerCert, auth: &ClientAuth) -> Result<s2n_quic::provider::tls::default::Server, StartError> {
    let builder = s2n_quic::provider::tls::default::Server::builder()
        .with_certificate(cert.cert_pem.as_str(), cert.key_pem.as_str())
        .and_then(|b| b.with_application_protocols(std::iter::once(alpn()).chain(legacy_alpns())))
        .map_err(start_err)?;
    let builder = match auth {
        ClientAuth::Anyone => builder,
        ClientAuth::Services { ca_pem } => builder
            .with_empty_trust_store()
            .and_then(|b| b.with_trusted_certificate(ca_pem.as_str()))
            .and_then(|b| b.with_client_authentication())
            .and_then(|b| b.with_verify_host_name_callback(ServiceNameOnly))
            .map_err(start_err)?,
    };
    builder.build().map_err(start_err)
}

/// The `max_datagram_frame_size` this endpoint advertises (RFC 9221): the protocol's
/// [`pwn_proto::codec::DATAGRAM_SIZE_MAX`]. s2n-quic takes the peer's value as the largest
/// payload it may send, so a PWN peer can send exactly what is accepted; a stack that reads it
/// as RFC 9221 does (the whole frame, type and length included) sends at most 1,097 bytes. A
/// datagram over the limit that arrives anyway is a protocol violation (closed with
/// `ProtocolViolation`).
pub const DATAGRAM_FRAME_SIZE_MAX: u64 = pwn_proto::codec::DATAGRAM_SIZE_MAX as u64;

/// s2n-quic's datagram queues, advertising [`DATAGRAM_FRAME_SIZE_MAX`] instead of its default
/// 65,535 bytes.
struct Datagrams(DatagramEndpoint);

impl s2n_quic::provider::datagram::Endpoint for Datagrams {
    type Sender = s2n_quic::provider::datagram::default::Sender;
    type Receiver = s2n_quic::provider::datagram::default::Receiver;

    fn create_connection(
        &mut self,
        info: &s2n_quic::provider::datagram::ConnectionInfo,
    ) -> (Self::Sender, Self::Receiver) {
        self.0.create_connection(info)
    }

    fn max_datagram_frame_size(&self, _info: &s2n_quic::provider::datagram::PreConnectionInfo) -> u64 {
        DATAGRAM_FRAME_SIZE_MAX
    }
}

fn datagrams(cfg: &TransportConfig) -> Result<Datagrams, StartError> {
    let queues = DatagramEndpoint::builder()
        .with_send_capacity(cfg.datagram_send_queue)
        .and_then(|b| b.with_recv_capacity(cfg.datagram_recv_queue))
        .map_err(start_err)?
        .build()
        .map_err(start_err)?;
    Ok(Datagrams(queues))
}

/// A listening PWN server.
pub struct NetServer {
    server: s2n_quic::Server,
    identity: ServiceIdentity,
    cfg: TransportConfig,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for NetServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetServer").field("addr", &self.local_addr().ok()).finish()
    }
}

impl NetServer {
    /// Binds `addr` (port 0 picks a free port) and starts accepting QUIC connections from
    /// anyone who trusts `cert`.
    pub fn bind(
        addr: SocketAddr,
        cert: &ServerCert,
        cfg: &TransportConfig,
        identity: ServiceIdentity,
    ) -> Result<Self, StartError> {
        Self::bind_with(addr, cert, &ClientAuth::Anyone, cfg, identity)
    }

    /// Binds `addr` and accepts connections from the peers `auth` allows.
    pub fn bind_with(
        addr: SocketAddr,
        cert: &ServerCert,
        auth: &ClientAuth,
        cfg: &TransportConfig,
        identity: ServiceIdentity,
    ) -> Result<Self, StartError> {
        let endpoint_limits = s2n_quic::provider::endpoint_limits::default::Limits::builder()
            .with_inflight_handshake_limit(cfg.inflight_handshakes_max)
            .map_err(start_err)?
            .build()
            .map_err(start_err)?;
        let server = s2n_quic::Server::builder()
            .with_tls(server_tls(cert, auth)?)
            .map_err(start_err)?
            .with_io(addr)
            .map_err(start_err)?
            .with_limits(limits(cfg)?)
            .map_err(start_err)?
            .with_endpoint_limits(endpoint_limits)
            .map_err(start_err)?
            .with_datagram(datagrams(cfg)?)
            .map_err(start_err)?
            .with_event(MetricsSubscriber)
            .map_err(start_err)?
            .start()
            .map_err(start_err)?;
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cfg.connections_max));
        Ok(Self { server, identity, cfg: cfg.clone(), slots })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.server.local_addr()
    }

    /// The next incoming connection (its PWN handshake not yet done), or `None` once the
    /// server is closed. Run [`Incoming::handshake`] in its own task.
    pub async fn accept(&mut self) -> Option<Incoming> {
        let connection = self.server.accept().await?;
        // A full server still completes the QUIC handshake (it cannot refuse earlier), then
        // tells the client it is unavailable in the PWN handshake.
        let slot = self.slots.clone().try_acquire_owned().ok();
        Some(Incoming { connection, identity: self.identity.clone(), cfg: self.cfg.clone(), slot })
    }
}

/// A QUIC connection whose PWN handshake has not run yet.
pub struct Incoming {
    connection: s2n_quic::Connection,
    identity: ServiceIdentity,
    cfg: TransportConfig,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Incoming {
    /// The client's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.connection.remote_addr().ok()
    }

    /// Runs the accepting side of the handshake (rules `[hs-1]`..`[hs-4]` in pwn-proto):
    /// the first stream must carry a `Hello`, answered by `Welcome` or `Refused` and a close.
    pub async fn handshake(self) -> Result<Conn, ConnError> {
        let timeout = self.cfg.handshake_timeout;
        let remote = self.connection.remote_addr().map_err(from_connection_error)?;
        let (handle, mut streams) = self.connection.split();
        let stream = match tokio::time::timeout(timeout, streams.accept_bidirectional_stream()).await {
            Err(_) => {
                handle.close((RefuseCode::ProtocolViolation as u8).into());
                return Err(ConnError::HandshakeTimeout);
            }
            Ok(Err(e)) => return Err(from_connection_error(e)),
            Ok(Ok(None)) => return Err(ConnError::EndedDuringHandshake),
            Ok(Ok(Some(s))) => s,
        };
        let (recv, send) = stream.split();
        let full = self.slot.is_none();
        let tx = ConnTx::new(handle, send, self.slot);
        let mut rx = StreamRx::new(recv, tx.clone());
        if full {
            metrics::counter!(m::HANDSHAKES_REFUSED).increment(1);
            let message = format!("server full ({} connections); try again later", self.cfg.connections_max);
            tx.refuse(RefuseCode::Unavailable, message.clone()).await;
            return Err(ConnError::Refused { code: RefuseCode::Unavailable, message });
        }
        let first = match tokio::time::timeout(timeout, rx.recv()).await {
            Err(_) => {
                tx.refuse(RefuseCode::ProtocolViolation, "no Hello within the handshake timeout".into()).await;
                return Err(ConnError::HandshakeTimeout);
            }
            Ok(r) => r?,
        };
        let hello = match first {
            Some(Message::Hello(h)) => h,
            Some(_) => {
                metrics::counter!(m::HANDSHAKES_REFUSED).increment(1);
                tx.refuse(RefuseCode::ProtocolViolation, "the first message must be Hello".into()).await;
                return Err(ConnError::UnexpectedHandshake("the first message was not Hello"));
            }
            None => return Err(ConnError::EndedDuringHandshake),
        };
        // A client whose QUIC stack offered no DATAGRAM frames (RFC 9221) would join and then
        // receive no snapshot: it is refused now, with the reason. Probed by queueing a `Ping`
        // datagram, which the stack refuses at once when the peer cannot take datagrams.
        if hello.role == PeerRole::Client
            && tx.send_datagram(&Message::Ping(pwn_proto::Ping { seq: 0, sent_us: 0 })).is_err()
        {
            metrics::counter!(m::HANDSHAKES_REFUSED).increment(1);
            let message =
                "this server sends game state as QUIC DATAGRAM frames (RFC 9221); your QUIC stack did not offer them"
                    .to_owned();
            tracing::info!(%remote, "handshake refused: the client takes no datagrams");
            tx.refuse(RefuseCode::ProtocolViolation, message.clone()).await;
            return Err(ConnError::Refused { code: RefuseCode::ProtocolViolation, message });
        }
        // The server's preference puts `pwn/N` first, so only a peer that offered nothing
        // else lands on the legacy ALPN.
        let offered = tx.handle().application_protocol().unwrap_or_default();
        let answer = if offered.as_ref() == alpn().as_bytes() {
            answer_hello(&hello, self.identity.sim_digest, self.identity.tick_hz)
        } else {
            Err(pwn_proto::Refused {
                code: RefuseCode::VersionMismatch,
                message: format!(
                    "this server speaks {} (ALPN); your client offered {} (protocol version {}): update your client",
                    alpn(),
                    String::from_utf8_lossy(&offered),
                    hello.protocol_version
                ),
            })
        };
        match answer {
            Ok(welcome) => {
                tx.send(&Message::Welcome(welcome.clone())).await?;
                metrics::counter!(m::CONNECTIONS_ACCEPTED).increment(1);
                tracing::debug!(%remote, role = ?hello.role, agent = %hello.agent, "connection accepted");
                let peer = PeerInfo { remote, role: hello.role, agent: hello.agent, welcome };
                Ok(Conn { datagrams: DatagramRx::new(tx.clone()), tx, rx, streams, peer })
            }
            Err(refused) => {
                metrics::counter!(m::HANDSHAKES_REFUSED).increment(1);
                tracing::info!(%remote, code = ?refused.code, "handshake refused: {}", refused.message);
                tx.refuse(refused.code, refused.message.clone()).await;
                Err(ConnError::Refused { code: refused.code, message: refused.message })
            }
        }
    }
}

/// A client endpoint that trusts one CA (the development CA, or an operator's).
pub struct NetClient {
    client: s2n_quic::Client,
    cfg: TransportConfig,
}

impl std::fmt::Debug for NetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetClient").finish_non_exhaustive()
    }
}

/// What a client says about itself in its `Hello`.
#[derive(Clone, Debug)]
pub struct ClientHello {
    /// Its role.
    pub role: PeerRole,
    /// Its simulation digest.
    pub sim_digest: u64,
    /// Program and version, for logs.
    pub agent: String,
    /// Protocol version to announce (tests of the refusal use another).
    pub protocol_version: u16,
}

impl ClientHello {
    /// A hello for this build's protocol version.
    pub fn new(role: PeerRole, sim_digest: u64, agent: impl Into<String>) -> Self {
        Self { role, sim_digest, agent: agent.into(), protocol_version: PROTOCOL_VERSION }
    }
}

impl NetClient {
    /// A client bound to an ephemeral local port of `local` (use a loopback address in tests),
    /// verifying servers against `ca_pem`.
    pub fn new(local: SocketAddr, ca_pem: &str, cfg: &TransportConfig) -> Result<Self, StartError> {
        Self::with_identity(local, ca_pem, None, cfg)
    }

    /// A client that also presents `identity` (a service's certificate, for servers that
    /// require one: [`ClientAuth::Services`]).
    pub fn with_identity(
        local: SocketAddr,
        ca_pem: &str,
        identity: Option<&ServerCert>,
        cfg: &TransportConfig,
    ) -> Result<Self, StartError> {
        let mut tls = s2n_quic::provider::tls::default::Client::builder()
            .with_certificate(ca_pem)
            .and_then(|b| b.with_application_protocols(std::iter::once(alpn()).chain(legacy_alpns())))
            .map_err(start_err)?;
        if let Some(id) = identity {
            tls = tls.with_client_identity(id.cert_pem.as_str(), id.key_pem.as_str()).map_err(start_err)?;
        }
        let client = s2n_quic::Client::builder()
            .with_tls(tls.build().map_err(start_err)?)
            .map_err(start_err)?
            .with_io(local)
            .map_err(start_err)?
            .with_limits(limits(cfg)?)
            .map_err(start_err)?
            .with_datagram(datagrams(cfg)?)
            .map_err(start_err)?
            .with_event(MetricsSubscriber)
            .map_err(start_err)?
            .start()
            .map_err(start_err)?;
        Ok(Self { client, cfg: cfg.clone() })
    }

    /// Connects to `addr`, verifying its certificate for `server_name`, and runs the
    /// connecting side of the handshake.
    pub async fn connect(&self, addr: SocketAddr, server_name: &str, hello: &ClientHello) -> Result<Conn, ConnError> {
        let timeout = self.cfg.handshake_timeout;
        let connect = Connect::new(addr).with_server_name(server_name);
        let mut connection = match tokio::time::timeout(timeout, self.client.connect(connect)).await {
            Err(_) => return Err(ConnError::HandshakeTimeout),
            Ok(r) => r.map_err(from_connection_error)?,
        };
        connection.keep_alive(self.cfg.keep_alive.is_some()).map_err(from_connection_error)?;
        let stream = connection.open_bidirectional_stream().await.map_err(from_connection_error)?;
        let (handle, streams) = connection.split();
        let (recv, send) = stream.split();
        let tx = ConnTx::new(handle, send, None);
        let mut rx = StreamRx::new(recv, tx.clone());
        let remote = addr;
        tx.send(&Message::Hello(Hello {
            protocol_version: hello.protocol_version,
            sim_digest: hello.sim_digest,
            role: hello.role,
            agent: hello.agent.clone(),
        }))
        .await?;
        let answer = match tokio::time::timeout(timeout, rx.recv()).await {
            Err(_) => return Err(ConnError::HandshakeTimeout),
            Ok(r) => r?,
        };
        match answer {
            Some(Message::Welcome(welcome)) => {
                let peer = PeerInfo { remote, role: PeerRole::World, agent: String::new(), welcome };
                Ok(Conn { datagrams: DatagramRx::new(tx.clone()), tx, rx, streams, peer })
            }
            Some(Message::Refused(r)) => Err(ConnError::Refused { code: r.code, message: r.message }),
            Some(_) => {
                tx.refuse(RefuseCode::ProtocolViolation, "expected Welcome".into()).await;
                Err(ConnError::UnexpectedHandshake("the server's first message was not Welcome"))
            }
            None => Err(ConnError::EndedDuringHandshake),
        }
    }
}
