//! pwn-zone-node: the authoritative simulation of the cells a zone node leases.
//!
//! # Layout
//! - [`input_buffer`]: per-player input reception (redundant, duplicated, reordered, late and
//!   lost datagrams) and the one-input-per-tick release policy.
//! - [`interest`]: which entities a player can see (an R-tree rebuilt each tick).
//! - [`snapshots`]: per-client snapshot building: priority by distance, speed and staleness,
//!   a byte budget, packed deltas against the client's acknowledged view.
//! - [`zone`]: the zone core: simulation plus players, advanced one tick at a time (no IO).
//!
//! The tick loop, interest management, snapshots and persistence arrive with the rest of the
//! zone node issue; they will build on these cores.

pub mod input_buffer;
pub mod interest;
pub mod snapshots;
pub mod zone;
