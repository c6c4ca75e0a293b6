//! The Prometheus endpoint: installs the global `metrics` recorder with an HTTP listener
//! (`GET /metrics`), with histogram buckets for the durations operators alert on. Must be
//! called inside the role's tokio runtime (the listener runs on it).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::SocketAddr;

/// Tick and checkpoint durations, milliseconds: fine around the 33 ms budget of a 30 Hz tick.
const DURATION_MS_BUCKETS: &[f64] =
    &[0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 33.0, 40.0, 50.0, 66.0, 100.0, 250.0, 1000.0];
/// Bytes per client per second.
const BYTES_PER_S_BUCKETS: &[f64] = &[1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3, 128e3, 256e3, 512e3];

/// Serves metrics at `addr` from now on.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_ms".into()), DURATION_MS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_bytes_per_s".into()), BYTES_PER_S_BUCKETS)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))
}
