//! An established PWN connection: a control stream carrying framed reliable messages, QUIC
//! DATAGRAM frames carrying unreliable ones, and further streams for service RPC.
//!
//! Any protocol violation by the peer (a malformed, oversized or unknown frame or datagram)
//! closes the connection with the `ProtocolViolation` application code after a best-effort
//! `Refused` message saying why. Other connections are unaffected.

use crate::error::{ConnError, from_connection_error, from_stream_error};
use crate::metrics_names as m;
use bytes::Bytes;
use pwn_proto::codec::{DecodeError, decode_frame};
use pwn_proto::{Message, PeerRole, RefuseCode, Refused, Welcome, decode_datagram, encode_datagram, encode_frame};
use s2n_quic::connection::Handle;
use s2n_quic::provider::datagram::default::{Receiver as DatagramReceiver, Sender as DatagramSender};
use s2n_quic::stream::{ReceiveStream, SendStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a `Refused` explanation may take to go out before the connection closes anyway.
const REFUSAL_SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// Who is on the other end, learned in the handshake.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The peer's role (as it announced itself; services authenticate each other by TLS).
    pub role: PeerRole,
    /// The peer's agent string.
    pub agent: String,
    /// The negotiated parameters.
    pub welcome: Welcome,
}

/// Counters of one connection (also exported, summed over connections, through `metrics`).
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Frame bytes written to the control stream.
    pub stream_bytes_sent: AtomicU64,
    /// Frame bytes read from the control stream.
    pub stream_bytes_received: AtomicU64,
    /// Datagrams queued for sending.
    pub datagrams_sent: AtomicU64,
    /// Datagrams received and decoded.
    pub datagrams_received: AtomicU64,
    /// Datagrams dropped before sending (queue full: the oldest goes first).
    pub datagrams_dropped: AtomicU64,
    /// Encoded datagram bytes queued for sending (payload, without QUIC's framing).
    pub datagram_bytes_sent: AtomicU64,
    /// Encoded datagram bytes received and decoded.
    pub datagram_bytes_received: AtomicU64,
}

impl ConnStats {
    /// Payload bytes sent so far, reliable and unreliable together.
    pub fn bytes_sent(&self) -> u64 {
        self.stream_bytes_sent.load(Ordering::Relaxed) + self.datagram_bytes_sent.load(Ordering::Relaxed)
    }

    /// Payload bytes received so far, reliable and unreliable together.
    pub fn bytes_received(&self) -> u64 {
        self.stream_bytes_received.load(Ordering::Relaxed) + self.datagram_bytes_received.load(Ordering::Relaxed)
    }
}

/// The sending side; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct ConnTx {
    handle: Handle,
    control: Arc<Mutex<SendStream>>,
    stats: Arc<ConnStats>,
    /// The server's connection slot, released when the last part of the connection is dropped.
    _slot: Option<Arc<tokio::sync::OwnedSemaphorePermit>>,
}

impl std::fmt::Debug for ConnTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTx").field("id", &self.handle.id()).finish()
    }
}

impl ConnTx {
    pub(crate) fn new(handle: Handle, control: SendStream, slot: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        Self {
            handle,
            control: Arc::new(Mutex::new(control)),
            stats: Arc::new(ConnStats::default()),
            _slot: slot.map(Arc::new),
        }
    }

    /// The connection's counters.
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// The underlying QUIC connection handle (for opening RPC streams).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends a message reliably, in order, on the control stream.
    pub async fn send(&self, message: &Message) -> Result<(), ConnError> {
        let frame = encode_frame(message)?;
        let len = frame.len() as u64;
        self.control.lock().await.send(Bytes::from(frame)).await.map_err(from_stream_error)?;
        self.stats.stream_bytes_sent.fetch_add(len, Ordering::Relaxed);
        metrics::counter!(m::STREAM_BYTES_SENT).increment(len);
        Ok(())
    }

    /// Queues a message as an unreliable datagram. When the queue is full the oldest queued
    /// datagram is dropped (and counted): the newest state matters most.
    pub fn send_datagram(&self, message: &Message) -> Result<(), ConnError> {
        self.send_datagram_encoded(Bytes::from(encode_datagram(message)?))
    }

    /// Queues an already encoded datagram message (a gateway forwarding a zone's datagram as
    /// it came); like [`ConnTx::send_datagram`] otherwise. The bytes must be one message as
    /// `encode_datagram` makes it; the receiver checks them as it checks any datagram.
    pub fn send_datagram_encoded(&self, bytes: Bytes) -> Result<(), ConnError> {
        if bytes.len() > pwn_proto::codec::DATAGRAM_SIZE_MAX {
            return Err(ConnError::Datagram(format!("{} bytes exceed the datagram limit", bytes.len())));
        }
        let len = bytes.len() as u64;
        let outcome = self
            .handle
            .datagram_mut(|s: &mut DatagramSender| s.send_datagram_forced(bytes))
            .map_err(|_| ConnError::DatagramsUnavailable)?;
        match outcome {
            Ok(dropped) => {
                self.stats.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                self.stats.datagram_bytes_sent.fetch_add(len, Ordering::Relaxed);
                metrics::counter!(m::DATAGRAMS_SENT).increment(1);
                metrics::counter!(m::DATAGRAM_BYTES_SENT).increment(len);
                if dropped.is_some() {
                    self.stats.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::DATAGRAMS_DROPPED).increment(1);
                }
                Ok(())
            }
            Err(e) => Err(ConnError::Datagram(e.to_string())),
        }
    }

    /// Sends bytes on the control stream without encoding or checking them. Only for testing how
    /// peers handle broken input; never use it to send real messages.
    #[doc(hidden)]
    pub async fn send_raw_unchecked(&self, bytes: Bytes) -> Result<(), ConnError> {
        self.control.lock().await.send(bytes).await.map_err(from_stream_error)
    }

    /// Finishes the control stream and waits until the peer has received everything sent on
    /// it: the graceful half of a shutdown.
    pub async fn finish(&self) -> Result<(), ConnError> {
        self.control.lock().await.close().await.map_err(from_stream_error)
    }

    /// Closes the whole connection at once with an application code.
    pub fn close(&self, code: RefuseCode) {
        self.handle.close((code as u8).into());
    }

    /// Tells the peer why (best effort, bounded in time), then closes with the reason's code.
    pub async fn refuse(&self, code: RefuseCode, message: String) {
        let refusal = Message::Refused(Refused { code, message: truncate(message) });
        let _ = tokio::time::timeout(REFUSAL_SEND_TIMEOUT, async {
            self.send(&refusal).await?;
            self.control.lock().await.flush().await.map_err(from_stream_error)
        })
        .await;
        self.close(code);
    }
}

fn truncate(mut s: String) -> String {
    let max = pwn_proto::codec::TEXT_LEN_MAX;
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The receiving side of the control stream.
pub struct StreamRx {
    stream: ReceiveStream,
    buf: Vec<u8>,
    tx: ConnTx,
}

impl StreamRx {
    pub(crate) fn new(stream: ReceiveStream, tx: ConnTx) -> Self {
        Self { stream, buf: Vec::new(), tx }
    }

    /// The next reliable message; `None` when the peer finished the stream cleanly. A violation
    /// closes the connection and is returned as `ConnError::Protocol`.
    pub async fn recv(&mut self) -> Result<Option<Message>, ConnError> {
        loop {
            match decode_frame(&self.buf) {
                Ok((message, used)) => {
                    self.buf.drain(..used);
                    self.tx.stats.stream_bytes_received.fetch_add(used as u64, Ordering::Relaxed);
                    metrics::counter!(m::STREAM_BYTES_RECEIVED).increment(used as u64);
                    return Ok(Some(message));
                }
                Err(DecodeError::Incomplete { .. }) => {}
                Err(DecodeError::Violation(v)) => {
                    metrics::counter!(m::PROTOCOL_VIOLATIONS).increment(1);
                    tracing::warn!(peer = ?self.tx.handle.remote_addr().ok(), violation = %v, "closing connection: protocol violation");
                    self.tx.refuse(RefuseCode::ProtocolViolation, v.to_string()).await;
                    return Err(ConnError::Protocol(v));
                }
            }
            match self.stream.receive().await.map_err(from_stream_error)? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None if self.buf.is_empty() => return Ok(None),
                None => {
                    // A frame cut off by the end of the stream: a violation like any other,
                    // counted, logged, and the connection closed with its code.
                    let v =
                        pwn_proto::Violation::OutOfRange { field: "frame", why: "stream ended inside a frame".into() };
                    metrics::counter!(m::PROTOCOL_VIOLATIONS).increment(1);
                    tracing::warn!(peer = ?self.tx.handle.remote_addr().ok(), violation = %v, "closing connection: protocol violation");
                    self.tx.close(RefuseCode::ProtocolViolation);
                    return Err(ConnError::Protocol(v));
                }
            }
        }
    }
}

/// The receiving side of datagrams.
pub struct DatagramRx {
    tx: ConnTx,
}

impl DatagramRx {
    pub(crate) fn new(tx: ConnTx) -> Self {
        Self { tx }
    }

    /// The next datagram message. A datagram that does not decode is a protocol violation
    /// (QUIC authenticates every packet, so it cannot be line noise).
    pub async fn recv(&mut self) -> Result<Message, ConnError> {
        let handle = self.tx.handle.clone();
        let received =
            std::future::poll_fn(|cx| match handle.datagram_mut(|r: &mut DatagramReceiver| r.poll_recv_datagram(cx)) {
                Ok(poll) => poll.map(Ok),
                Err(e) => Poll::Ready(Err(e)),
            })
            .await;
        let bytes = match received {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(s2n_quic::provider::datagram::default::DatagramError::ConnectionError { error, .. })) => {
                return Err(from_connection_error(error));
            }
            Ok(Err(e)) => return Err(ConnError::Datagram(e.to_string())),
            Err(_) => return Err(ConnError::DatagramsUnavailable),
        };
        match decode_datagram(&bytes) {
            Ok(message) => {
                self.tx.stats.datagrams_received.fetch_add(1, Ordering::Relaxed);
                self.tx.stats.datagram_bytes_received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                metrics::counter!(m::DATAGRAMS_RECEIVED).increment(1);
                Ok(message)
            }
            Err(v) => {
                metrics::counter!(m::PROTOCOL_VIOLATIONS).increment(1);
                self.tx.refuse(RefuseCode::ProtocolViolation, v.to_string()).await;
                Err(ConnError::Protocol(v))
            }
        }
    }
}

/// An established connection, split into its parts.
pub struct Conn {
    /// Sending (reliable and datagrams).
    pub tx: ConnTx,
    /// Receiving reliable messages.
    pub rx: StreamRx,
    /// Receiving datagrams.
    pub datagrams: DatagramRx,
    /// Accepting further streams the peer opens (RPC).
    pub streams: s2n_quic::connection::StreamAcceptor,
    /// The peer.
    pub peer: PeerInfo,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("peer", &self.peer).finish_non_exhaustive()
    }
}
