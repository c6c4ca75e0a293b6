//! Names of the transport's metrics (Prometheus-style, units last) and the s2n-quic event
//! subscriber that feeds the packet-level ones.

use s2n_quic::provider::event::{ConnectionInfo, ConnectionMeta, Subscriber, events};

/// Frame bytes written on control streams.
pub const STREAM_BYTES_SENT: &str = "pwn_net_stream_bytes_sent_total";
/// Frame bytes read from control streams.
pub const STREAM_BYTES_RECEIVED: &str = "pwn_net_stream_bytes_received_total";
/// Datagrams queued for sending.
pub const DATAGRAMS_SENT: &str = "pwn_net_datagrams_sent_total";
/// Datagram payload bytes queued for sending.
pub const DATAGRAM_BYTES_SENT: &str = "pwn_net_datagram_bytes_sent_total";
/// Datagrams received and decoded.
pub const DATAGRAMS_RECEIVED: &str = "pwn_net_datagrams_received_total";
/// Datagrams dropped from a full send queue.
pub const DATAGRAMS_DROPPED: &str = "pwn_net_datagrams_dropped_total";
/// Connections closed for a protocol violation.
pub const PROTOCOL_VIOLATIONS: &str = "pwn_net_protocol_violations_total";
/// QUIC packets sent.
pub const PACKETS_SENT: &str = "pwn_net_packets_sent_total";
/// QUIC packet bytes sent.
pub const PACKET_BYTES_SENT: &str = "pwn_net_packet_bytes_sent_total";
/// QUIC packets received.
pub const PACKETS_RECEIVED: &str = "pwn_net_packets_received_total";
/// QUIC packet bytes received.
pub const PACKET_BYTES_RECEIVED: &str = "pwn_net_packet_bytes_received_total";
/// Smoothed round-trip time samples.
pub const RTT_MS: &str = "pwn_net_rtt_ms";
/// Handshakes refused (version or simulation mismatch, violations).
pub const HANDSHAKES_REFUSED: &str = "pwn_net_handshakes_refused_total";
/// Connections accepted after a successful handshake.
pub const CONNECTIONS_ACCEPTED: &str = "pwn_net_connections_accepted_total";

/// Records packet counts, bytes and RTT from s2n-quic's events.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricsSubscriber;

impl Subscriber for MetricsSubscriber {
    type ConnectionContext = ();

    fn create_connection_context(&mut self, _meta: &ConnectionMeta, _info: &ConnectionInfo) -> Self::ConnectionContext {
    }

    fn on_packet_sent(&mut self, _c: &mut (), _meta: &ConnectionMeta, event: &events::PacketSent) {
        metrics::counter!(PACKETS_SENT).increment(1);
        metrics::counter!(PACKET_BYTES_SENT).increment(event.packet_len as u64);
    }

    fn on_packet_received(&mut self, _c: &mut (), _meta: &ConnectionMeta, event: &events::PacketReceived) {
        metrics::counter!(PACKETS_RECEIVED).increment(1);
        metrics::counter!(PACKET_BYTES_RECEIVED).increment(event.packet_len as u64);
    }

    fn on_recovery_metrics(&mut self, _c: &mut (), _meta: &ConnectionMeta, event: &events::RecoveryMetrics) {
        metrics::histogram!(RTT_MS).record(event.smoothed_rtt.as_secs_f64() * 1e3);
    }
}
