//! pwn-zone-node: the authoritative simulation of the cells a zone node leases.
//!
//! # Layout
//! - [`input_buffer`]: per-player input reception (redundant, duplicated, reordered, late and
//!   lost datagrams) and the one-input-per-tick release policy.
//! - [`interest`]: which entities a player can see: all within the radius, the nearest in a
//!   crowd, from a grid rebuilt each tick and walked in rings outwards.
//! - [`items`]: items of value: inventories read on joining, gifts between players nearby and
//!   loot from kills, each a store transaction fenced by the cell lease, beside the tick.
//! - [`objects`]: world objects players edit: each edit checked against the simulation,
//!   committed as one fenced, idempotent store transaction, then applied; loading a cell's.
//! - [`persist`]: checkpoints of the zone's crates and of its players who came through a
//!   gateway, fenced by the cell lease; loading them.
//! - [`snapshots`]: per-client snapshot building: priority by distance, speed and staleness,
//!   a byte budget, packed deltas against the client's acknowledged view; [`shared_bodies`]
//!   packs each entity's update once per tick for all the clients that hold the same base.
//! - [`zone`]: the zone core: simulation plus players, advanced one tick at a time (no IO);
//!   `views` builds each player's view of a tick (interest, snapshot), on a pool of threads
//!   when the zone has more than one core to use, with the same bytes as on one.
//! - [`server`]: the async shell: accepts connections over pwn-net, runs the fixed tick, sends
//!   snapshots as datagrams and events on the control stream, never waiting on the network.
//! - [`links`]: the connections the shell serves: players connected directly (development,
//!   tests) and gateway links carrying many players (`Attach`, `Detach`, `Routed`).
//! - In a partitioned world: [`territory`] (which cells this node serves, hysteresis, ghost
//!   margin), [`border`] (players handed over and ghosted), [`border_crates`] (crates owned,
//!   ghosted and handed over), [`border_shots`] (projectiles flown on by the neighbour, shots
//!   and hits told across borders) and [`mesh_link`] (heartbeats, zone links, the committer).

pub mod border;
pub mod border_crates;
pub mod border_shots;
pub mod input_buffer;
pub mod interest;
pub mod items;
pub mod links;
pub mod mesh_link;
pub mod objects;
pub mod persist;
pub mod server;
pub mod shared_bodies;
pub mod snapshots;
pub mod territory;
mod views;
pub mod zone;
