//! The world server's service calls, as speedy-encoded bodies of `pwn_net::rpc` calls: zone
//! nodes register and beat, gateways ask where a player belongs and who serves what. Every
//! list is bounded and checked after decoding ([`decode`]).

use crate::core::{CellOwner, Epoch, HeldLease, Load, ZoneId};
use pwn_store::keys::CellKey;
use speedy::{Readable, Writable};

/// Register a zone node: [`RegisterNode`] -> [`Registered`].
pub const METHOD_REGISTER: u16 = 1;
/// A node's heartbeat: [`Heartbeat`] -> [`HeartbeatAnswer`].
pub const METHOD_HEARTBEAT: u16 = 2;
/// Where a player belongs: [`RoutePlayer`] -> [`Routed`].
pub const METHOD_ROUTE: u16 = 3;
/// Who serves every cell: empty -> [`Owners`].
pub const METHOD_OWNERS: u16 = 4;

/// Error code: the node is unknown (register again).
pub const ERR_UNKNOWN_NODE: u16 = 1;
/// Error code: the request did not decode.
pub const ERR_BAD_REQUEST: u16 = 2;
/// Error code: the store failed.
pub const ERR_STORE: u16 = 3;
/// Error code: the caller may not make this call (its role, or a heartbeat without the node's
/// token).
pub const ERR_FORBIDDEN: u16 = 4;

/// Most cells in one answer (the deepest partition the world server allows).
pub const CELLS_MAX: usize = crate::quadtree::LEAVES_MAX;
/// Longest node address.
pub const ADDR_LEN_MAX: usize = 64;

/// A cell on the wire.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct WireCell {
    /// Level.
    pub level: u8,
    /// Path.
    pub path: u64,
}

impl From<CellKey> for WireCell {
    fn from(c: CellKey) -> Self {
        Self { level: c.level, path: c.path }
    }
}

impl From<WireCell> for CellKey {
    fn from(c: WireCell) -> Self {
        CellKey { level: c.level, path: c.path }
    }
}

/// A zone node registering.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct RegisterNode {
    /// Where gateways and other zones reach it, at most `ADDR_LEN_MAX` bytes.
    pub addr: String,
    /// Relative capacity.
    pub capacity: u32,
}

/// The world as a registered node needs it.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Registered {
    /// The node's id.
    pub node: u64,
    /// When tick 0 started, milliseconds since the Unix epoch (`DESIGN`, "One world clock").
    pub world_start_unix_ms: u64,
    /// The world's minimum corner.
    pub origin_m: [f32; 2],
    /// The world's extent.
    pub size_m: [f32; 2],
    /// The leaf cells.
    pub leaves: Vec<WireCell>,
    /// The token the node proves in every heartbeat (`[world-6]`).
    pub token: [u8; 16],
}

/// A node's load, every second.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Default)]
pub struct Heartbeat {
    /// The node.
    pub node: u64,
    /// The token its registration gave it.
    pub token: [u8; 16],
    /// Players it serves.
    pub players: u32,
    /// Entities it simulates.
    pub entities: u32,
    /// Tick time p99 over the last second.
    pub tick_ms_p99: f32,
    /// Bytes sent over the last second.
    pub bytes_out_per_s: u64,
}

impl Heartbeat {
    /// The core's view of the load.
    pub fn load(&self) -> Load {
        Load {
            players: self.players,
            entities: self.entities,
            tick_ms_p99: if self.tick_ms_p99.is_finite() { self.tick_ms_p99 } else { 0.0 },
            bytes_out_per_s: self.bytes_out_per_s,
        }
    }
}

/// A lease on the wire.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct WireLease {
    /// The cell.
    pub cell: WireCell,
    /// Its epoch.
    pub epoch: u64,
    /// How long it lasts from the heartbeat's sending.
    pub valid_for_ms: u64,
}

/// Who serves a cell, on the wire.
#[derive(Readable, Writable, Clone, Debug, PartialEq, Eq)]
pub struct WireOwner {
    /// The cell.
    pub cell: WireCell,
    /// The node.
    pub node: u64,
    /// Its address.
    pub addr: String,
    /// The lease epoch.
    pub epoch: u64,
}

impl From<&CellOwner> for WireOwner {
    fn from(o: &CellOwner) -> Self {
        Self { cell: o.cell.into(), node: o.node.0, addr: o.addr.clone(), epoch: o.epoch.0 }
    }
}

impl WireOwner {
    /// The core's form.
    pub fn owner(&self) -> CellOwner {
        CellOwner { cell: self.cell.into(), node: ZoneId(self.node), addr: self.addr.clone(), epoch: Epoch(self.epoch) }
    }
}

/// The answer to a heartbeat: the node's leases, and who serves every cell.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct HeartbeatAnswer {
    /// The leases the node holds.
    pub leases: Vec<WireLease>,
    /// Every served cell.
    pub owners: Vec<WireOwner>,
}

impl HeartbeatAnswer {
    /// The leases in the core's form.
    pub fn held(&self) -> Vec<HeldLease> {
        self.leases
            .iter()
            .map(|l| HeldLease { cell: l.cell.into(), epoch: Epoch(l.epoch), valid_for_ms: l.valid_for_ms })
            .collect()
    }
}

/// Where does this player belong?
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct RoutePlayer {
    /// The player.
    pub player: u64,
}

/// Where a player belongs: the node serving its cell, if the cell is served now.
#[derive(Readable, Writable, Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The owner of the player's cell.
    pub owner: Option<WireOwner>,
}

/// Who serves every cell.
#[derive(Readable, Writable, Clone, Debug, PartialEq, Eq)]
pub struct Owners {
    /// The served cells.
    pub owners: Vec<WireOwner>,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed world server message: {0}")]
pub struct WireError(pub String);

/// Bounds every decoded body must meet.
pub trait Bounded {
    /// Checks list and string lengths.
    fn check(&self) -> Result<(), WireError>;
}

fn bound(what: &str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max { Err(WireError(format!("{what}: {len} > {max}"))) } else { Ok(()) }
}

impl Bounded for RegisterNode {
    fn check(&self) -> Result<(), WireError> {
        bound("addr", self.addr.len(), ADDR_LEN_MAX)
    }
}
impl Bounded for Registered {
    fn check(&self) -> Result<(), WireError> {
        bound("leaves", self.leaves.len(), CELLS_MAX)
    }
}
impl Bounded for Heartbeat {
    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}
impl Bounded for HeartbeatAnswer {
    fn check(&self) -> Result<(), WireError> {
        bound("leases", self.leases.len(), CELLS_MAX)?;
        bound("owners", self.owners.len(), CELLS_MAX)?;
        self.owners.iter().try_for_each(|o| bound("addr", o.addr.len(), ADDR_LEN_MAX))
    }
}
impl Bounded for RoutePlayer {
    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}
impl Bounded for Routed {
    fn check(&self) -> Result<(), WireError> {
        self.owner.iter().try_for_each(|o| bound("addr", o.addr.len(), ADDR_LEN_MAX))
    }
}
impl Bounded for Owners {
    fn check(&self) -> Result<(), WireError> {
        bound("owners", self.owners.len(), CELLS_MAX)?;
        self.owners.iter().try_for_each(|o| bound("addr", o.addr.len(), ADDR_LEN_MAX))
    }
}

/// Decodes a body and checks its bounds (the RPC frame already bounded its size).
pub fn decode<T: for<'a> Readable<'a, speedy::LittleEndian> + Bounded>(body: &[u8]) -> Result<T, WireError> {
    let t = T::read_from_buffer(body).map_err(|e| WireError(e.to_string()))?;
    t.check()?;
    Ok(t)
}

/// Encodes a body.
pub fn encode<T: Writable<speedy::LittleEndian>>(t: &T) -> Vec<u8> {
    t.write_to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: a decoded body or an error, never a panic.
        #[test]
        fn hostile_bodies_are_refused_not_panicked_on(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<RegisterNode>(&bytes);
            let _ = decode::<HeartbeatAnswer>(&bytes);
            let _ = decode::<Routed>(&bytes);
            let _ = decode::<Owners>(&bytes);
        }
    }

    #[test]
    fn bodies_round_trip_and_long_addresses_are_refused() {
        let r = RegisterNode { addr: "127.0.0.1:7101".into(), capacity: 2 };
        assert_eq!(decode::<RegisterNode>(&encode(&r)).unwrap(), r);
        let long = RegisterNode { addr: "x".repeat(ADDR_LEN_MAX + 1), capacity: 1 };
        assert!(decode::<RegisterNode>(&encode(&long)).is_err());
    }
}
