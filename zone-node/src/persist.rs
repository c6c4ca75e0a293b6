//! Persistence of the zone's entities: a checkpoint writes every crate's motion state, fenced by
//! the zone's cell lease, and a starting zone loads what the last checkpoint wrote. Synchronous
//! (store calls block): the async shell runs them on blocking threads, never in the tick.
//!
//! Rules:
//! - `[persist-1]` every checkpoint transaction reads the cell's lease and aborts if the epoch
//!   moved (`pwn_store::fence::check_lease`): a zone that lost its lease can never write;
//! - `[persist-2]` a checkpoint replaces the cell's position index entries and entity records in
//!   one transaction: readers see the whole checkpoint or the previous one;
//! - `[persist-3]` loading ignores records that do not decode or name unknown crates, counting
//!   them; it never fails the start because of one bad record.
//! - `[persist-4]` players who came through a gateway are saved under `("pwn", "players", id)`
//!   (position, heading, health) in every checkpoint and when they leave, fenced like the rest;
//!   a returning player is placed where the record says (a dead or invalid record: a spawn
//!   point).
//! - `[persist-5]` in a partitioned world a player is written only in a transaction that reads
//!   its owner record and finds the writing cell (`pwn_store::ownership` `[own-2]`).
//! - `[persist-6]` in a partitioned world crates are owned like players: a cell's crates are the
//!   ones its owner records name (claimed when the cell is first loaded: crates in its position
//!   index with no owner, and crates of the world file placed in it that were never stored);
//!   a checkpoint writes a crate only while its cell owns it, and indexes it inside that cell
//!   (a crate within the hysteresis past the border is indexed at the nearest point of the
//!   cell), so two cells never both list one crate.

use crate::border::Departure;
use glam::{Quat, Vec3};
use pwn_sim::{EntityId, Sim};
use pwn_store::fence::{check_lease, grant_lease};
use pwn_store::keys::{CellKey, EntityRecord, LeaseRecord, entity_at_key, entity_key, finest_quadkey, player_key};
use pwn_store::ownership::{Handoff, OwnershipError, Side};
use pwn_store::{Store, StoreError};

/// Entity kind stored for crates.
pub const KIND_CRATE: u32 = 1;
/// Entity kind stored for players.
pub const KIND_PLAYER: u32 = 2;

/// One player's persisted state (`[persist-4]`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PlayerState {
    /// The player.
    pub id: EntityId,
    /// Position.
    pub position: Vec3,
    /// Heading.
    pub yaw_rad: f32,
    /// Health.
    pub health: u16,
}

impl PlayerState {
    /// The state of a character in the simulation.
    pub fn of(id: EntityId, c: &pwn_sim::CharacterState) -> Self {
        Self { id, position: c.position_m, yaw_rad: c.yaw_rad, health: c.health }
    }

    fn record(&self) -> EntityRecord {
        EntityRecord {
            kind: KIND_PLAYER,
            position_m: self.position.to_array(),
            yaw_rad: self.yaw_rad,
            health: u32::from(self.health),
            data: Vec::new(),
        }
    }

    /// The character to place for this state, or `None` for a spawn point (dead, or not a
    /// finite position).
    pub fn character(&self, cfg: &pwn_sim::SimConfig) -> Option<pwn_sim::CharacterState> {
        if self.health == 0 || !self.position.is_finite() || !self.yaw_rad.is_finite() {
            return None;
        }
        let mut c = pwn_sim::CharacterState::spawned_at(self.position, cfg);
        c.yaw_rad = self.yaw_rad;
        c.health = self.health;
        Some(c)
    }
}

/// A player's saved state, if any (a record that does not decode counts as none).
pub fn load_player(store: &Store, id: EntityId) -> Result<Option<PlayerState>, StoreError> {
    let key = player_key(id.0);
    let value = store.transact(|t| t.get(&key))?;
    Ok(value.and_then(|v| EntityRecord::decode(&key, &v).ok()).filter(|r| r.kind == KIND_PLAYER).map(|r| PlayerState {
        id,
        position: Vec3::from(r.position_m),
        yaw_rad: r.yaw_rad,
        health: u16::try_from(r.health).unwrap_or(u16::MAX),
    }))
}

/// Saves players' states for `cell`, fenced by `epoch` (a player leaving).
pub fn save_players(store: &Store, cell: CellKey, epoch: u64, players: &[PlayerState]) -> Result<(), StoreError> {
    store.transact(|t| {
        check_lease(t, cell, epoch)?;
        for p in players {
            t.set(&player_key(p.id.0), &p.record().encode())?;
        }
        Ok(())
    })
}

/// Claims `player` for `cell` (`pwn_store::ownership` `[own-5]`): a player entering the world
/// in a cell of this zone. Owning it already is fine; another cell owning it is refused.
pub fn claim_player(store: &Store, player: EntityId, cell: CellKey, epoch: u64) -> Result<(), OwnershipError> {
    store.transact(|t| pwn_store::ownership::claim(t, player.0, cell, epoch))
}

/// Commits a departure: the player's new owner and its record at the handoff tick, in one
/// transaction fenced by both cells' leases (`pwn_store::ownership` `[own-3]`, `[own-4]`).
pub fn commit_departure(store: &Store, d: &Departure, from_epoch: u64) -> Result<Handoff, OwnershipError> {
    let key = player_key(d.player.0);
    let record = PlayerState::of(d.player, &d.character).record().encode();
    let from = Side { cell: d.from, epoch: from_epoch };
    let to = Side { cell: d.to, epoch: d.to_epoch.0 };
    store.transact(|t| pwn_store::ownership::hand_off(t, d.player.0, d.tick, from, to, (&key, &record)))
}

/// One crate's persisted motion.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CrateState {
    /// Its id.
    pub id: EntityId,
    /// Position.
    pub position: Vec3,
    /// Orientation.
    pub rotation: Quat,
    /// Linear velocity.
    pub linvel: Vec3,
    /// Angular velocity.
    pub angvel: Vec3,
}

impl CrateState {
    fn record(&self) -> EntityRecord {
        let mut data = Vec::with_capacity(40);
        for v in self.rotation.to_array().into_iter().chain(self.linvel.to_array()).chain(self.angvel.to_array()) {
            data.extend_from_slice(&v.to_le_bytes());
        }
        EntityRecord { kind: KIND_CRATE, position_m: self.position.to_array(), yaw_rad: 0.0, health: 0, data }
    }

    fn from_record(id: EntityId, r: &EntityRecord) -> Option<Self> {
        if r.kind != KIND_CRATE || r.data.len() != 40 {
            return None;
        }
        let f: Vec<f32> = r.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Some(Self {
            id,
            position: Vec3::from(r.position_m),
            rotation: Quat::from_xyzw(f[0], f[1], f[2], f[3]),
            linvel: Vec3::new(f[4], f[5], f[6]),
            angvel: Vec3::new(f[7], f[8], f[9]),
        })
    }
}

/// Every crate's state in the simulation now.
pub fn crate_states(sim: &Sim) -> Vec<CrateState> {
    sim.crates()
        .filter_map(|(id, ..)| {
            let (position, rotation, linvel, angvel) = sim.crate_state(id)?;
            Some(CrateState { id, position, rotation, linvel, angvel })
        })
        .collect()
}

/// `cell`'s crates in a partitioned world (`[persist-6]`), read in one transaction fenced by its
/// lease: the crates it owns, after claiming those in its position index with no owner and
/// those of `placed` (the world file's crates and where it puts them) inside `rect` that were
/// never stored nor owned. A crate without a stored record comes back without a state.
pub fn load_cell_crates(
    store: &Store,
    cell: CellKey,
    epoch: u64,
    rect: pwn_partitioner::Rect,
    placed: &[(EntityId, Vec3)],
) -> Result<Vec<(EntityId, Option<CrateState>)>, OwnershipError> {
    store.transact(|t| {
        check_lease(t, cell, epoch)?;
        let mut ids = std::collections::BTreeSet::new();
        let (b, e) = pwn_store::keys::owned_range(cell);
        for k in range_keys(t, &b, &e)? {
            if let Ok((_, _, _, _, id)) = foundationdb_tuple::unpack::<(String, String, u32, u64, u64)>(&k)
                && !EntityId(id).is_gameplay()
            {
                ids.insert(id);
            }
        }
        let (b, e) = cell.entity_at_range();
        for k in range_keys(t, &b, &e)? {
            if let Ok((_, _, _, id)) = foundationdb_tuple::unpack::<(String, String, u64, u64)>(&k)
                && !EntityId(id).is_gameplay()
                && pwn_store::ownership::owner(t, id)?.is_none()
            {
                pwn_store::ownership::claim(t, id, cell, epoch)?;
                ids.insert(id);
            }
        }
        for (id, at) in placed {
            if rect.contains(at.x, at.z, 0.0)
                && pwn_store::ownership::owner(t, id.0)?.is_none()
                && t.get(&entity_key(id.0))?.is_none()
            {
                pwn_store::ownership::claim(t, id.0, cell, epoch)?;
                ids.insert(id.0);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let key = entity_key(id);
            let state = t
                .get(&key)?
                .and_then(|v| EntityRecord::decode(&key, &v).ok())
                .and_then(|r| CrateState::from_record(EntityId(id), &r));
            out.push((EntityId(id), state));
        }
        Ok(out)
    })
}

/// Every key in `[b, e)`, page by page.
fn range_keys(t: &mut dyn pwn_store::Transaction, b: &[u8], e: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    let mut from = b.to_vec();
    loop {
        let page = t.get_range(&from, e, pwn_store::RangeOptions::default())?;
        let Some((last, _)) = page.last() else { break };
        from = last.clone();
        from.push(0);
        let full = page.len() >= pwn_store::limits::RANGE_LIMIT_MAX;
        out.extend(page.into_iter().map(|(k, _)| k));
        if !full {
            break;
        }
    }
    Ok(out)
}

/// Commits a crate's departure (`[persist-6]`): its owner record moves, its record is written at
/// the handoff tick and its position index entry moves into the taking cell, in one transaction
/// fenced by both cells' leases (`pwn_store::ownership` `[own-3]`, `[own-4]`).
pub fn commit_crate_departure(
    store: &Store,
    d: &crate::border_crates::CrateDeparture,
    from_epoch: u64,
    from_rect: pwn_partitioner::Rect,
    bounds: &SimBounds,
) -> Result<Handoff, OwnershipError> {
    let id = d.state.id.0;
    let key = entity_key(id);
    let record = d.state.record().encode();
    let from = Side { cell: d.from, epoch: from_epoch };
    let to = Side { cell: d.to, epoch: d.to_epoch.0 };
    store.transact(|t| {
        let old = t.get(&key)?.and_then(|v| EntityRecord::decode(&key, &v).ok());
        let done = pwn_store::ownership::hand_off(t, id, d.tick, from, to, (&key, &record))?;
        if done == Handoff::Moved {
            // Its old entry: where it was, or (indexed by a checkpoint of `from`) the nearest
            // point of `from` to it.
            if let Some(old) = old {
                let at = Vec3::from(old.position_m);
                let from_m = [from_rect.min[0], from_rect.min[1], from_rect.max[0], from_rect.max[1]];
                t.clear(&index_key(d.state.id, at, None, bounds))?;
                t.clear(&index_key(d.state.id, at, Some(from_m), bounds))?;
            }
            t.set(&index_key(d.state.id, d.state.position, None, bounds), b"")?;
        }
        Ok(done)
    })
}

/// A crate's position index key: where it is, or, given its cell's rectangle (min x, min z,
/// max x, max z), the nearest point inside the cell (`[persist-6]`). Rectangles are half-open
/// (a cell's maximum edge is its neighbour's), so the point is kept half a finest quadkey cell
/// short of the maximum edges.
fn index_key(id: EntityId, p: Vec3, rect_m: Option<[f32; 4]>, b: &SimBounds) -> Vec<u8> {
    let (x, z) = match rect_m {
        Some([x0, z0, x1, z1]) => {
            let finest = (1u32 << pwn_store::keys::QUADKEY_LEVEL_MAX) as f32;
            let (hx, hz) = (0.5 * b.size_m[0] / finest, 0.5 * b.size_m[1] / finest);
            (p.x.clamp(x0, (x1 - hx).max(x0)), p.z.clamp(z0, (z1 - hz).max(z0)))
        }
        None => (p.x, p.z),
    };
    entity_at_key(finest_quadkey(x, z, b.origin_m, b.size_m), id.0)
}

/// Takes the lease of `cell` for `node` (the next epoch).
pub fn acquire_lease(store: &Store, cell: CellKey, node: u64) -> Result<LeaseRecord, StoreError> {
    store.transact(|t| grant_lease(t, cell, node))
}

/// Writes a checkpoint of `crates` for `cell`, fenced by `epoch` (`[persist-1]`, `[persist-2]`).
pub fn checkpoint(
    store: &Store,
    cell: CellKey,
    epoch: u64,
    crates: &[CrateState],
    players: &[PlayerState],
    sim: &SimBounds,
) -> Result<(), StoreError> {
    let c = CellCheckpoint {
        cell,
        epoch,
        crates: crates.to_vec(),
        objects: Vec::new(),
        players: players.to_vec(),
        owners_checked: false,
        rect_m: None,
    };
    checkpoint_cell(store, &c, sim).map(|_| ())
}

/// One cell's share of a checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellCheckpoint {
    /// The cell.
    pub cell: CellKey,
    /// Its lease epoch.
    pub epoch: u64,
    /// The crates within it.
    pub crates: Vec<CrateState>,
    /// Dynamic world objects within it, at the version the simulation holds
    /// (`crate::objects` `[zobj-5]`).
    pub objects: Vec<crate::objects::ObjectMotion>,
    /// The players it owns.
    pub players: Vec<PlayerState>,
    /// Whether each player's and crate's owner record is checked (`[persist-5]`,
    /// `[persist-6]`): a zone serving part of a partitioned world writes an entity only while
    /// its cell owns it.
    pub owners_checked: bool,
    /// The cell's rectangle (min x, min z, max x, max z): crates are indexed at the nearest
    /// point inside it (`[persist-6]`). `None`: where they are.
    pub rect_m: Option<[f32; 4]>,
}

/// Writes one cell's checkpoint (`[persist-1]`, `[persist-2]`, `[persist-5]`); returns the
/// players skipped because another cell owns them now (handed off meanwhile: the handoff
/// wrote their state).
pub fn checkpoint_cell(store: &Store, c: &CellCheckpoint, sim: &SimBounds) -> Result<usize, StoreError> {
    store.transact(|t| {
        check_lease(t, c.cell, c.epoch)?;
        let mut skipped = 0;
        for p in &c.players {
            if c.owners_checked && pwn_store::ownership::owner(t, p.id.0)? != Some(c.cell) {
                skipped += 1;
                continue;
            }
            t.set(&player_key(p.id.0), &p.record().encode())?;
        }
        let (b, e) = c.cell.entity_at_range();
        t.clear_range(&b, &e)?;
        for k in &c.crates {
            if c.owners_checked && pwn_store::ownership::owner(t, k.id.0)? != Some(c.cell) {
                skipped += 1;
                continue;
            }
            t.set(&index_key(k.id, k.position, c.rect_m, sim), b"")?;
            t.set(&entity_key(k.id.0), &k.record().encode())?;
        }
        let bounds = pwn_store::objects::Bounds { origin_m: sim.origin_m, size_m: sim.size_m };
        for o in &c.objects {
            pwn_store::objects::save_motion(t, o.id.0, o.version, o.motion, &bounds)?;
        }
        Ok(skipped)
    })
}

/// Saves players leaving a cell of a partitioned world, each only if the cell still owns it
/// (`[persist-5]`).
pub fn save_owned_players(store: &Store, cell: CellKey, epoch: u64, players: &[PlayerState]) -> Result<(), StoreError> {
    let c =
        CellCheckpoint { cell, epoch, players: players.to_vec(), owners_checked: true, ..CellCheckpoint::default() };
    store.transact(|t| {
        check_lease(t, c.cell, c.epoch)?;
        for p in &c.players {
            if pwn_store::ownership::owner(t, p.id.0)? == Some(c.cell) {
                t.set(&player_key(p.id.0), &p.record().encode())?;
            }
        }
        Ok(())
    })
}

/// The owner record of a player, with its saved state (what a zone reads when a gateway
/// attaches the player).
pub fn load_owned_player(store: &Store, id: EntityId) -> Result<(Option<CellKey>, Option<PlayerState>), StoreError> {
    let owner = store.transact(|t| pwn_store::ownership::owner(t, id.0))?;
    Ok((owner, load_player(store, id)?))
}

/// The world bounds quadkeys are computed over.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SimBounds {
    /// Minimum corner on XZ.
    pub origin_m: [f32; 2],
    /// Extent on XZ.
    pub size_m: [f32; 2],
}

impl SimBounds {
    /// The bounds of a simulation's world.
    pub fn of(sim: &Sim) -> Self {
        Self { origin_m: sim.desc().origin_m, size_m: sim.desc().size_m }
    }
}

/// What loading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Crates restored from the store.
    pub restored: u32,
    /// Records skipped (undecodable, another kind, unknown crate, invalid state).
    pub skipped: u32,
}

/// Loads `cell`'s crates from the store into `sim` (`[persist-3]`).
pub fn load_crates(store: &Store, cell: CellKey, sim: &mut Sim) -> Result<LoadReport, StoreError> {
    let (states, mut report) = read_crates_counted(store, cell)?;
    for c in states {
        if sim.restore_crate(c.id, c.position, c.rotation, c.linvel, c.angvel) {
            report.restored += 1;
        } else {
            report.skipped += 1;
        }
    }
    Ok(report)
}

/// The crates `cell` holds in the store (records that do not decode are skipped, `[persist-3]`).
pub fn read_crates(store: &Store, cell: CellKey) -> Result<Vec<CrateState>, StoreError> {
    read_crates_counted(store, cell).map(|(c, _)| c)
}

fn read_crates_counted(store: &Store, cell: CellKey) -> Result<(Vec<CrateState>, LoadReport), StoreError> {
    let (b, e) = cell.entity_at_range();
    let mut ids = Vec::new();
    store.for_each_page(&b, &e, 10_000, |page| {
        for (k, _) in page {
            if let Ok((_, _, _, id)) = foundationdb_tuple::unpack::<(String, String, u64, u64)>(k) {
                ids.push(id);
            }
        }
    })?;
    let mut report = LoadReport::default();
    let mut out = Vec::new();
    for chunk in ids.chunks(1_000) {
        let records = store.transact(|t| {
            let mut out = Vec::with_capacity(chunk.len());
            for id in chunk {
                let key = entity_key(*id);
                out.push((*id, t.get(&key)?.map(|v| EntityRecord::decode(&key, &v))));
            }
            Ok::<_, StoreError>(out)
        })?;
        for (id, record) in records {
            match record.and_then(|r| r.ok()).and_then(|r| CrateState::from_record(EntityId(id), &r)) {
                Some(c) => out.push(c),
                None => report.skipped += 1,
            }
        }
    }
    Ok((out, report))
}
