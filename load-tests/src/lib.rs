//! pwn-load-tests: bot swarms for load testing a PWN world.
//!
//! # Layout
//! - [`scenario`]: how a bot moves (`wander`, `hotspot`, `shooters`), as a pure function of
//!   its seed and what it sees.
//! - [`swarm`]: N headless `pwn_client::Client`s in one process over real QUIC, staggered
//!   joins, one chat line each, progress counters, and the per-bot results.
//! - [`report`]: the summary (table and JSON keys) and the HTML report with plots.

pub mod report;
pub mod scenario;
pub mod swarm;
