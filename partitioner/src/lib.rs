//! pwn-partitioner: the world server. It owns the quadtree of cells over the world's XZ
//! plane, registers zone nodes, grants each leaf cell's lease to one node with an epoch that
//! only grows, renews leases on heartbeats and grants the cells of silent nodes again, and
//! tells gateways where a player belongs.
//!
//! # Layout
//! - [`quadtree`]: the cells: leaves that cover the world exactly once, their rectangles,
//!   which leaf holds a position, neighbours.
//! - [`core`]: the pure core (`WorldCore`): nodes, leases, assignment, routing; time comes in
//!   with every call.
//! - [`lease`]: the leases a zone node holds, by its own clock (zone nodes use it to stop
//!   serving a cell they cannot renew).
//! - [`persist`]: what the world server keeps in the store (clock start, partition, nodes,
//!   leases); [`route`]: where a player belongs, from its owner record or stored position.
//! - [`wire`]: the world server's calls (register, heartbeat, route, owners) as RPC bodies.
//! - [`server`]: the async shell (`pwn world`); [`client`]: calling it from zones and gateways.

pub mod client;
pub mod core;
pub mod lease;
pub mod persist;
pub mod quadtree;
pub mod route;
pub mod server;
pub mod wire;

pub use crate::core::{CellOwner, Epoch, Grant, HeldLease, Load, WorldConfig, WorldCore, WorldError, ZoneId};
pub use crate::quadtree::{Quadtree, QuadtreeError, Rect};
