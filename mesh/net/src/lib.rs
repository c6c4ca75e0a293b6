//! pwn-net: the PWN transport, a thin async shell around the pure protocol in `pwn-proto`.
//!
//! QUIC on s2n-quic over real UDP sockets: one bidirectional control stream per connection
//! carries framed reliable messages; QUIC DATAGRAM frames (RFC 9221) carry unreliable ones;
//! further streams carry service RPC. TLS is always verified: servers present a certificate from
//! a development CA generated into the data folder (or the operator's files), clients trust
//! that CA.
//!
//! # Layout
//! - [`config`]: transport settings (idle timeout, keep-alive, handshake timeout and in-flight
//!   handshake limit, datagram queues, stream limits).
//! - [`tls`]: the development CA and certificate loading.
//! - [`endpoint`]: `NetServer` (bind, accept, handshake) and `NetClient` (connect, handshake).
//! - [`conn`]: an established connection: `ConnTx` (reliable and datagram sends),
//!   `StreamRx`, `DatagramRx`, and stream acceptance for RPC.
//! - [`conditioner`]: a link conditioner (latency, jitter, loss, duplication, reordering) with
//!   a pure, seeded core, for tests of prediction and handoff.
//! - [`rpc`]: typed service calls as `tower::Service`s over QUIC streams.
//! - [`service_auth`]: services proving the deployment's service key to each other.
//! - [`metrics_names`]: metric names and the s2n-quic event subscriber that records packets,
//!   bytes and RTT.

pub mod conditioner;
pub mod config;
pub mod conn;
pub mod endpoint;
pub mod error;
pub mod metrics_names;
pub mod rpc;
pub mod service_auth;
pub mod tls;

pub use config::{ServerTls, ServiceIdentity, TransportConfig};
pub use conn::{Conn, ConnStats, ConnTx, DatagramRx, PeerInfo, StreamRx};
pub use endpoint::{ClientAuth, ClientHello, Incoming, NetClient, NetServer, StartError};
pub use error::ConnError;
