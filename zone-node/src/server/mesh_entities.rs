//! The tick thread's share of crates and projectiles in a partitioned world: after each tick,
//! projectiles that flew into a neighbour's cell go to it (`crate::border_shots`), crates that
//! moved into another cell go to the committer and then to their new zone, and crates near
//! neighbours are ghosted to them (`crate::border_crates`); neighbours' projectiles, shots,
//! crate ghosts and crate handoffs are checked against the world server's map before the zone
//! core takes them (`[zlink-4]`).

use super::tick::TickLoop;
use crate::mesh_link::{Committed, Job};
use crate::persist::SimBounds;
use pwn_partitioner::{Epoch, ZoneId};
use pwn_proto::Message;
use pwn_sim::EntityId;
use pwn_store::keys::CellKey;
use pwn_store::ownership::{Handoff, OwnershipError};

/// Ticks between two reads of a served cell's crates (5 s at 30 Hz).
pub const CRATES_REREAD_TICKS: u64 = 150;
/// Ticks between two full listings of this zone's objects near each neighbour (`[zobj-6]`).
pub const OBJECT_GHOSTS_EVERY_TICKS: u64 = 150;

impl TickLoop {
    /// The committer's job reading (and claiming) `cell`'s crates, asked at `tick`.
    pub(super) fn load_crates(mesh: &super::mesh_tick::MeshTick, cell: CellKey, epoch: u64, tick: u64) -> Job {
        let rect = mesh.territory.tree().rect(cell);
        Job::LoadCrates { cell, epoch, rect, placed: mesh.placed_crates.clone(), tick }
    }

    /// Projectiles and crates after the border pass: handed on, committed, ghosted; every few
    /// seconds this zone's objects near each neighbour listed to it (`[zobj-6]`); and now and
    /// then each served cell's crates read again, to adopt any the store says are its own but
    /// that never arrived (their handoff message lost with a link or a zone).
    pub(super) fn crates_and_shots_border(&mut self) {
        if self.mesh.is_none() {
            return;
        }
        let tick = self.zone.sim().tick().0;
        if tick.is_multiple_of(OBJECT_GHOSTS_EVERY_TICKS) {
            self.send_object_ghosts(true, None);
        }
        let Some(mesh) = &self.mesh else { return };
        if tick.is_multiple_of(CRATES_REREAD_TICKS) {
            let now = mesh.now_ms();
            let cells: Vec<(CellKey, u64)> = mesh
                .held
                .cells()
                .filter(|(c, h)| now < h.valid_until_ms && mesh.loaded.contains(c))
                .map(|(c, h)| (c, h.epoch.0))
                .collect();
            for (cell, epoch) in cells {
                let _ = mesh.committer.submit(Self::load_crates(mesh, cell, epoch, tick));
            }
        }
        self.objects_border();
        let Some(mesh) = &self.mesh else { return };
        for (node, h) in self.zone.projectiles_leaving(&mesh.territory) {
            mesh.peers.send(node, Message::HandoffProjectile(h));
        }
        let departures = self.zone.crate_border_pass(&mesh.territory);
        let bounds = SimBounds::of(self.zone.sim());
        let mut failed = Vec::new();
        for d in departures {
            let submitted = mesh.serving(d.from).is_some_and(|e| {
                let from_rect = mesh.territory.tree().rect(d.from);
                mesh.committer.submit(Job::CrateHandoff { departure: d, from_epoch: e.0, from_rect, bounds })
            });
            if !submitted {
                failed.push(d.state.id);
            }
        }
        for id in failed {
            self.zone.crate_departure_failed(id);
        }
        let Some(mesh) = &self.mesh else { return };
        let tick = self.zone.sim().tick().0;
        for (node, crates) in self.zone.crate_ghost_batches(&mesh.territory) {
            let chunks: Vec<&[pwn_proto::WireCrate]> = if crates.is_empty() {
                vec![&[]]
            } else {
                crates.chunks(pwn_proto::CRATE_GHOSTS_PER_MESSAGE_MAX).collect()
            };
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let g = pwn_proto::CrateGhosts { tick, complete: i + 1 == n, crates: chunk.to_vec() };
                mesh.peers.send(node, Message::CrateGhosts(g));
            }
        }
    }

    /// A neighbour's projectile, shot, crate ghosts or crate handoff (`[zlink-4]`).
    pub(super) fn on_peer_entity(&mut self, from: ZoneId, message: Message) {
        let Some(mesh) = &self.mesh else { return };
        let refused = || metrics::counter!(crate::mesh_link::metric::PEER_REFUSED).increment(1);
        match message {
            Message::HandoffProjectile(h) => {
                // `[shot-2]`: only into a cell this zone serves.
                let [x, _, z] = h.projectile.position_m;
                let leaf = mesh.territory.tree().leaf_at(x, z);
                if mesh.serving(leaf).is_none() || !self.zone.arrive_projectile(&h) {
                    refused();
                }
            }
            Message::BorderEvent(e) => {
                let [x, _, z] = e.position_m;
                if !Self::near_cells_of(mesh, from, x, z) {
                    return refused();
                }
                self.zone.apply_border_event(&e);
            }
            Message::CrateGhosts(g) => self.zone.apply_crate_ghosts(from, g.tick, g.complete, &g.crates),
            Message::HandoffObject(h) => {
                // `[zobj-7]`: into a cell this zone serves; adopted once the store backs it.
                let cell = CellKey { level: h.to_cell.level, path: h.to_cell.path };
                if mesh.serving(cell).is_none() || !mesh.committer.submit(Job::AdoptObject { handoff: h }) {
                    tracing::warn!(object = h.object.id, cell = %cell, from = %from, "object handoff refused");
                    refused();
                }
            }
            Message::ObjectGhosts(g) => {
                // `[zobj-6]`: only the sender's own cells, only near this zone's.
                let margin = mesh.territory.config().ghost_margin_m;
                let tree = mesh.territory.tree();
                let now = mesh.now_ms();
                let accept = |p: glam::Vec3| {
                    mesh.territory.owner(tree.leaf_at(p.x, p.z)).is_some_and(|(n, _)| n == from)
                        && mesh
                            .held
                            .cells()
                            .any(|(c, h)| now < h.valid_until_ms && tree.rect(c).distance(p.x, p.z) <= margin)
                };
                let refused_n = self.zone.apply_object_ghosts(from.0, &g, accept);
                if refused_n > 0 {
                    metrics::counter!(crate::mesh_link::metric::PEER_REFUSED).increment(u64::from(refused_n));
                }
            }
            Message::HandoffCrate(h) => {
                let cell = CellKey { level: h.to_cell.level, path: h.to_cell.path };
                let from_cell = CellKey { level: h.from_cell.level, path: h.from_cell.path };
                if mesh.serving(cell) != Some(Epoch(h.to_epoch))
                    || mesh.territory.owner(from_cell).is_none_or(|(n, _)| n != from)
                    || !self.zone.arrive_crate(&h)
                {
                    // The store names its owner, which loads it with the cell.
                    tracing::warn!(entity = h.state.id, cell = %cell, from = %from, "crate handoff refused");
                    return refused();
                }
                metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "in", "kind" => "crate").increment(1);
            }
            _ => refused(),
        }
    }

    /// The committer read a cell's crates, or committed a crate's departure.
    pub(super) fn on_crates_committed(&mut self, done: Committed) {
        let Some(mesh) = &self.mesh else { return };
        match done {
            Committed::Crates { cell, epoch, tick, result, objects } => match result {
                Ok(crates) if mesh.serving(cell) == Some(Epoch(epoch)) => {
                    let n = self.zone.own_crates(cell, &crates, tick);
                    // Objects once, when the cell is first loaded: a re-read would move dynamic
                    // objects back to their last checkpoint.
                    match objects {
                        Ok(records) if !mesh.loaded.contains(&cell) => {
                            let rect = mesh.territory.tree().rect(cell);
                            let inside = |p: glam::Vec3| rect.contains(p.x, p.z, 0.0);
                            let (placed, skipped) = self.zone.place_loaded_objects(&records, inside);
                            tracing::info!(cell = %cell, placed, skipped, "objects of the cell loaded");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(cell = %cell, error = %e, "cannot read the cell's objects"),
                    }
                    if n > 0 || !mesh.loaded.contains(&cell) {
                        tracing::info!(cell = %cell, crates = n, "crates of the cell loaded");
                    }
                    if let Some(mesh) = &mut self.mesh {
                        mesh.loaded.insert(cell);
                    }
                }
                Ok(_) => {}
                Err(OwnershipError::Store(pwn_store::StoreError::Fenced { .. })) => {
                    tracing::warn!(cell = %cell, "the cell's lease moved before its crates were read");
                }
                Err(e) => {
                    tracing::warn!(cell = %cell, error = %e, "cannot read the cell's crates; trying again");
                    let _ = mesh.committer.submit(Self::load_crates(mesh, cell, epoch, tick));
                }
            },
            Committed::CrateHandoff { departure: d, result } => {
                let id = d.state.id;
                match result {
                    // A move between this zone's cells into one it lost meanwhile: the cell's
                    // new owner loads it.
                    Ok(_) if d.node == mesh.me && mesh.serving(d.to).is_none() => self.zone.crate_departure_lost(id),
                    Ok(Handoff::Moved | Handoff::AlreadyDone) => {
                        self.zone.crate_departed(id, mesh.me);
                        if d.node != mesh.me {
                            mesh.peers.send(d.node, Message::HandoffCrate(d.message()));
                            metrics::counter!(crate::mesh_link::metric::HANDOFFS, "dir" => "out", "kind" => "crate")
                                .increment(1);
                        }
                    }
                    // This zone's own lease or owner record failed: the crate is not its to
                    // simulate. (The taking cell's lease moving leaves it here.)
                    Err(OwnershipError::Store(pwn_store::StoreError::Fenced { cell, .. }))
                        if cell == d.from.to_string() =>
                    {
                        tracing::warn!(entity = %id, "crate handoff fenced: this zone's lease moved");
                        self.zone.crate_departure_lost(id);
                    }
                    Err(OwnershipError::NotOwner { .. }) => {
                        tracing::warn!(entity = %id, "crate handoff refused: another cell owns it");
                        self.zone.crate_departure_lost(id);
                    }
                    Err(e) => {
                        tracing::warn!(entity = %id, error = %e, "crate handoff not committed; it stays");
                        self.zone.crate_departure_failed(id);
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends this zone's objects near each neighbour to it (`[zobj-6]`): a full listing
    /// (`full`, to every neighbour, empty ones too, so stale ghosts are released), or the
    /// objects `only` names (just committed edits; `None` entries of the list were removed, with
    /// where they were).
    pub(super) fn send_object_ghosts(&self, full: bool, only: Option<&[(EntityId, glam::Vec3)]>) {
        let Some(mesh) = &self.mesh else { return };
        let near = |p: glam::Vec3, out: &mut Vec<u64>| {
            let mut nodes = Vec::new();
            mesh.territory.ghost_targets(p.x, p.z, &mut nodes);
            out.clear();
            out.extend(nodes.iter().map(|n| n.0));
        };
        let mut batches = match only {
            None => self.zone.object_ghosts_for(near),
            Some(edited) => {
                let mut out: std::collections::BTreeMap<u64, Vec<pwn_proto::WireObject>> = Default::default();
                let mut nodes = Vec::new();
                for (id, was_at) in edited {
                    let wire = self.zone.object_wire(*id).unwrap_or(pwn_proto::WireObject {
                        id: id.0,
                        state: 0,
                        version: u64::MAX,
                        removed: true,
                        position_m: was_at.to_array(),
                        rotation: [0.0, 0.0, 0.0, 1.0],
                    });
                    for p in [*was_at, glam::Vec3::from(wire.position_m)] {
                        near(p, &mut nodes);
                        for n in &nodes {
                            let list = out.entry(*n).or_default();
                            if !list.iter().any(|w| w.id == wire.id) {
                                list.push(wire);
                            }
                        }
                    }
                }
                out
            }
        };
        if full {
            for node in mesh.addrs.keys().filter(|n| **n != mesh.me) {
                batches.entry(node.0).or_default();
            }
        }
        for (node, objects) in batches {
            let chunks: Vec<&[pwn_proto::WireObject]> = if objects.is_empty() {
                vec![&[]]
            } else {
                objects.chunks(pwn_proto::OBJECT_GHOSTS_PER_MESSAGE_MAX).collect()
            };
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let g = pwn_proto::ObjectGhosts { full, first: i == 0, last: i + 1 == n, objects: chunk.to_vec() };
                mesh.peers.send(ZoneId(node), Message::ObjectGhosts(g));
            }
        }
    }

    /// Dynamic objects that moved into a neighbour's cell go to the committer (`[zobj-7]`).
    fn objects_border(&mut self) {
        let Some(mesh) = &self.mesh else { return };
        let departures = self.zone.object_border_pass(&mesh.territory);
        if departures.is_empty() {
            return;
        }
        let now = mesh.now_ms();
        let from_cells: Vec<(CellKey, u64)> =
            mesh.held.cells().filter(|(_, h)| now < h.valid_until_ms).map(|(c, h)| (c, h.epoch.0)).collect();
        let b = SimBounds::of(self.zone.sim());
        let bounds = pwn_store::objects::Bounds { origin_m: b.origin_m, size_m: b.size_m };
        let mut failed = Vec::new();
        for departure in departures {
            let job = Job::ObjectDeparture { departure, from_cells: from_cells.clone(), bounds };
            if !mesh.committer.submit(job) {
                failed.push(departure);
            }
        }
        for d in failed {
            // Not queued: it stays here and tries again later.
            self.zone.object_departed(&d, &Err(pwn_proto::EditOutcome::Busy));
        }
    }
}
