//! pwn-load-tests: bot swarms for load testing a PWN world.
//!
//! # Layout
//! - [`scenario`]: how a bot moves (`wander`, `hotspot`, `shooters`), as a pure function of
//!   its seed and what it sees.
//! - [`swarm`]: N bots in one process over real QUIC, each its own connection, staggered
//!   joins, one chat line each, progress counters, and the per-bot results: full bots are
//!   headless `pwn_client::Client`s (prediction on), the rest cheap bots.
//! - [`cheap`]: cheap bots, the same protocol without prediction, driven together by one task
//!   once per tick.
//! - [`attack`]: an adversarial client harness over raw QUIC (bad frames, handshakes and
//!   ALPNs, stream and connection floods, half-open connections, a login storm, datagrams for
//!   players it does not own), each outcome sorted into expected or not.
//! - [`duel`]: scripted duels for lag compensation: a shooter seeing a running target late,
//!   aiming at what it draws, on a bare simulation (`pwn bench lagcomp`).
//! - [`charts`]: the report's charts (plotters, inline SVG): percentiles over time and the map.
//! - [`report`]: the summary (table and JSON keys) and the HTML report with plots.
//! - [`scrape`]: each role's Prometheus endpoint read during a run (text format parser,
//!   histogram quantiles), for the report.
//! - [`threshold`]: pass/fail thresholds on the summary's figures (`input_ack_ticks_p99<=2`),
//!   for an exit code CI can gate on.

pub mod attack;
pub mod builders;
pub mod charts;
pub mod cheap;
pub mod duel;
pub mod report;
pub mod scenario;
pub mod scrape;
pub mod swarm;
pub mod threshold;
