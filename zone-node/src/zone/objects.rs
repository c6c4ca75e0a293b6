//! The zone core's world objects (`crate::objects`): edits checked, finished and loaded,
//! ghosts to and from neighbours, and dynamic objects changing hands at borders.

use super::Zone;
use pwn_sim::EntityId;

impl Zone {
    /// World objects' owners and versions.
    pub fn objects(&self) -> &crate::objects::ObjectBook {
        &self.objects
    }

    /// Checks a player's edit of a world object (`crate::objects` `[zobj-1]`); a valid one holds
    /// its space and object until [`Zone::finish_edit`] (`[zobj-4]`).
    pub fn check_edit(
        &mut self,
        serving: &dyn crate::objects::Serving,
        player: EntityId,
        req: &pwn_proto::EditObject,
    ) -> Result<crate::objects::Validated, pwn_proto::EditOutcome> {
        let mut v = crate::objects::check(&self.sim, &self.objects, serving, player, req)?;
        crate::objects::reserve(&mut self.objects, &mut v);
        Ok(v)
    }

    /// Finishes a checked edit with the store's outcome (`[zobj-4]`); returns the object it
    /// was about (0 for a refused placement).
    pub fn finish_edit(
        &mut self,
        serving: &dyn crate::objects::Serving,
        v: &crate::objects::Validated,
        outcome: &Result<pwn_store::objects::EditDone, pwn_proto::EditOutcome>,
    ) -> u64 {
        crate::objects::finish(&mut self.sim, &mut self.objects, serving, v, outcome)
    }

    /// Places world objects read from the store for a cell this zone now serves (`[zobj-5]`),
    /// after releasing the ghosts inside it (`inside`: the store says what is there now).
    /// Returns placed, skipped.
    pub fn place_loaded_objects(
        &mut self,
        records: &[(u64, pwn_store::objects::ObjectRecord)],
        inside: impl Fn(glam::Vec3) -> bool,
    ) -> (u32, u32) {
        crate::objects::drop_ghosts_in(&mut self.sim, &mut self.objects, inside);
        crate::objects::place_loaded(&mut self.sim, &mut self.objects, records)
    }

    /// This zone's dynamic objects now in another zone's cell, held still until their change
    /// of hands is committed (`crate::objects` `[zobj-7]`).
    pub fn object_border_pass(
        &mut self,
        territory: &crate::territory::Territory,
    ) -> Vec<crate::objects::ObjectDeparture> {
        crate::objects::border_pass(&mut self.sim, &mut self.objects, territory)
    }

    /// A departure's outcome (`[zobj-7]`); the message for the taking zone when committed.
    pub fn object_departed(
        &mut self,
        d: &crate::objects::ObjectDeparture,
        result: &Result<pwn_store::objects::ObjectRecord, pwn_proto::EditOutcome>,
    ) -> Option<pwn_proto::HandoffObject> {
        crate::objects::departed(&mut self.sim, &mut self.objects, d, result)
    }

    /// An object a neighbour handed over (`[zobj-7]`), adopted only as the store holds it
    /// (`stored`, read after the message came) in a cell `serves` names.
    pub fn arrive_object(
        &mut self,
        h: &pwn_proto::HandoffObject,
        stored: Option<&pwn_store::objects::ObjectRecord>,
        serves: impl Fn(glam::Vec3) -> bool,
    ) -> bool {
        crate::objects::arrive(&mut self.sim, &mut self.objects, h, stored, serves)
    }

    /// Puts an object at a pose in the simulation only (tools, tests: the store is not written;
    /// a dynamic object moves on from there).
    pub fn set_object_motion(
        &mut self,
        id: EntityId,
        position: glam::Vec3,
        linvel: glam::Vec3,
    ) -> Result<(), pwn_sim::ObjectRefused> {
        let rotation = self.sim.object(id).map_or(glam::Quat::IDENTITY, |o| o.rotation);
        self.sim.set_object_motion(id, position, rotation, linvel, glam::Vec3::ZERO)
    }

    /// Releases the object ghosts `node` sent (`[zobj-6]`: it left the map).
    pub fn drop_object_ghosts_of(&mut self, node: u64) {
        crate::objects::drop_ghosts_of(&mut self.sim, &mut self.objects, node);
    }

    /// This zone's objects for its neighbours (`crate::objects` `[zobj-6]`), by node.
    pub fn object_ghosts_for(
        &self,
        near: impl FnMut(glam::Vec3, &mut Vec<u64>),
    ) -> std::collections::BTreeMap<u64, Vec<pwn_proto::WireObject>> {
        crate::objects::ghosts_for(&self.sim, &self.objects, near)
    }

    /// One of this zone's own objects as a neighbour holds it (`None`: not one of its own).
    pub fn object_wire(&self, id: EntityId) -> Option<pwn_proto::WireObject> {
        let meta = self.objects.get(id)?;
        Some(crate::objects::wire_of(&self.sim.object(id)?, meta.version))
    }

    /// A neighbour's objects (`[zobj-6]`); returns how many were refused.
    pub fn apply_object_ghosts(
        &mut self,
        from: u64,
        g: &pwn_proto::ObjectGhosts,
        accept: impl Fn(glam::Vec3) -> bool,
    ) -> u32 {
        crate::objects::apply_ghosts(&mut self.sim, &mut self.objects, from, g, accept)
    }

    /// Takes out the world objects at positions `inside` names (cells no longer served).
    pub fn unload_objects(&mut self, inside: impl Fn(glam::Vec3) -> bool) -> usize {
        crate::objects::unload(&mut self.sim, &mut self.objects, inside)
    }

    /// Loads `cell`'s world objects from the store (`[zobj-5]`), releasing the ghosts inside
    /// it first: placed, skipped.
    pub fn load_objects(
        &mut self,
        store: &pwn_store::Store,
        cell: pwn_store::keys::CellKey,
    ) -> Result<(u32, u32), pwn_store::StoreError> {
        let records = crate::objects::read_cell(store, cell)?;
        let (origin, size) = (self.sim.desc().origin_m, self.sim.desc().size_m);
        let inside = |p: glam::Vec3| pwn_store::keys::CellKey::containing(cell.level, p.x, p.z, origin, size) == cell;
        Ok(self.place_loaded_objects(&records, inside))
    }
}
