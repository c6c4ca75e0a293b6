//! Transport errors, keeping their sources (never flattened to strings where a source exists).

use pwn_proto::codec::EncodeError;
use pwn_proto::{RefuseCode, Violation};

/// Why a connection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The peer refused the connection and said why.
    #[error("refused by the server ({code:?}): {message}")]
    Refused {
        /// Machine-readable reason.
        code: RefuseCode,
        /// The server's explanation.
        message: String,
    },
    /// The peer broke the protocol; the connection was closed.
    #[error("the peer broke the protocol")]
    Protocol(#[source] Violation),
    /// The connection closed with an application code (see `RefuseCode`), by either side.
    #[error("connection closed with application code {0}")]
    ClosedWithCode(u64),
    /// The connection saw no traffic for the idle timeout.
    #[error("connection idle timeout")]
    IdleTimeout,
    /// Another connection-level failure.
    #[error("connection failed")]
    Connection(#[source] s2n_quic::connection::Error),
    /// A stream-level failure.
    #[error("stream failed")]
    Stream(#[source] s2n_quic::stream::Error),
    /// The handshake did not complete in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer sent something other than the handshake message expected now.
    #[error("unexpected handshake message: {0}")]
    UnexpectedHandshake(&'static str),
    /// The connection ended cleanly during the handshake.
    #[error("the connection ended during the handshake")]
    EndedDuringHandshake,
    /// Datagrams are not enabled on this connection.
    #[error("datagrams are not available on this connection")]
    DatagramsUnavailable,
    /// A datagram could not be queued (too large for the peer's limit, or the connection failed).
    #[error("datagram not sent: {0}")]
    Datagram(String),
    /// We tried to send a message that breaks a bound (a bug; nothing was sent).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

pub(crate) fn from_connection_error(e: s2n_quic::connection::Error) -> ConnError {
    match e {
        s2n_quic::connection::Error::Application { error, .. } => ConnError::ClosedWithCode(u64::from(error)),
        s2n_quic::connection::Error::IdleTimerExpired { .. } => ConnError::IdleTimeout,
        other => ConnError::Connection(other),
    }
}

pub(crate) fn from_stream_error(e: s2n_quic::stream::Error) -> ConnError {
    match e {
        s2n_quic::stream::Error::ConnectionError { error, .. } => from_connection_error(error),
        other => ConnError::Stream(other),
    }
}
