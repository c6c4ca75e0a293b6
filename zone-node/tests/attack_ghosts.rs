//! Attacks on world-object ghosts between zones (`pwn_zone_node::objects` `[zobj-6]`) and on
//! edit reservations (`[zobj-4]`), on the two-zone fixture (WEST holds x < 0, EAST the rest).
//! Each test is named for the behaviour that should hold; a failing one shows a bug.

mod common;

use common::objects::{BLOCK, Served, WALL, east_applies, edit, ghosts, objects_world as world};
use common::{EAST, Pair, WEST, pair, place};
use glam::{Quat, Vec3};
use pwn_partitioner::ZoneId;
use pwn_proto::{EditObject, EditOp, EditOutcome, ObjectGhosts, WireObject};
use pwn_sim::quantize::quantize_position;
use pwn_sim::{EntityId, InputSeq};
use pwn_store::objects::Bounds;
use pwn_zone_node::objects::commit;
use pwn_zone_node::zone::Zone;

fn settle(zone: &mut Zone) {
    for _ in 0..20 {
        zone.tick();
    }
}

fn place_op(kind: u16, at: Vec3, yaw: u16) -> EditOp {
    EditOp::Place { kind, position: quantize_position(at), yaw, state: 0 }
}

/// A pair with WEST's player 1 at `west_at` and EAST's player 2 at `east_at`, settled.
fn setup(west_at: [f32; 3], east_at: Option<[f32; 3]>) -> Pair {
    let mut p = pair(world());
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 1, west_at);
        settle(z);
    }
    if let Some(at) = east_at {
        let (z, t) = &mut p.zones[1];
        place(z, t, 2, at);
        settle(z);
    }
    p
}

/// WEST commits a wall at (-1, 1.5, 104) across the z axis and EAST takes its ghost.
fn west_wall_ghosted_to_east(p: &mut Pair) -> u64 {
    let (outcome, wall) = edit(p, 0, 1, 1, place_op(WALL, Vec3::new(-1.0, 1.5, 104.0), 16_384));
    assert_eq!(outcome, EditOutcome::Committed);
    let g = ghosts(p, 0, EAST, false);
    assert_eq!(east_applies(p, WEST, &g), 0);
    assert!(p.zones[1].0.objects().is_ghost(EntityId(wall)));
    wall
}

fn removal(id: u64, at: Vec3) -> WireObject {
    WireObject {
        id,
        state: 0,
        version: u64::MAX,
        removed: true,
        position_m: at.to_array(),
        rotation: [0.0, 0.0, 0.0, 1.0],
    }
}

fn walk_west(zone: &mut Zone, player: u64, ticks: u32) {
    for seq in 1..=ticks {
        let i = pwn_proto::WireInput::from_input(&pwn_sim::PlayerInput {
            seq: InputSeq(seq),
            move_z: 1.0,
            yaw_rad: -std::f32::consts::FRAC_PI_2,
            ..Default::default()
        });
        zone.on_inputs(EntityId(player), &pwn_proto::InputBatch { ack_tick: 0, inputs: vec![i] }, 0);
        zone.tick();
    }
}

// ---------------------------------------------------------------------------------------------
// Ghosts and cell changes.
// ---------------------------------------------------------------------------------------------

/// WEST removes its wall in the store and dies before the removal reaches EAST; EAST gains
/// WEST's cell and loads it from the store (as `on_crates_committed` does with
/// `place_loaded_objects`). The store holds no wall there, so EAST must not keep one: a stale
/// ghost in EAST's own cell can be neither edited (`Missing`), checkpointed nor released (its
/// sender is gone), and it blocks placements forever.
#[test]
fn zobj_6_a_ghost_the_store_no_longer_holds_is_gone_once_the_receiver_loads_its_cell() {
    let mut p = setup([-3.0, 1.0, 100.0], Some([2.5, 1.0, 104.0]));
    let wall = west_wall_ghosted_to_east(&mut p);
    // WEST removes it; the removal message is lost with WEST.
    assert_eq!(edit(&mut p, 0, 1, 2, EditOp::Remove { object: wall }).0, EditOutcome::Committed);
    // EAST gains the cell the wall was in and loads its objects from the store.
    let cell = p.zones[1].1.tree().leaf_at(-1.0, 104.0);
    let store = p.store.clone();
    let east = &mut p.zones[1].0;
    east.load_objects(&store, cell).unwrap();
    assert!(
        east.sim().object(EntityId(wall)).is_none(),
        "EAST still holds the removed wall after loading its cell (ghost: {}, ghosts held: {})",
        east.objects().is_ghost(EntityId(wall)),
        east.objects().ghost_count()
    );
}

/// WEST dies and node 3 takes over WEST's cells. Node 3's full listings must be able to
/// release the ghosts EAST holds there: ghosts are released only by a full listing of the
/// node that sent them, and `on_map` drops character and crate ghosts of a node no longer
/// listed, not object ghosts.
#[test]
fn zobj_6_the_next_owner_of_a_dead_neighbours_cell_can_release_its_ghosts() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let wall = west_wall_ghosted_to_east(&mut p);
    // WEST's cells now belong to node 3.
    let third = ZoneId(3);
    let owners: Vec<_> = p.epochs.iter().map(|(c, n, e)| (*c, if *n == WEST { third } else { *n }, *e)).collect();
    p.zones[1].1.set_owners(owners);
    // Node 3 (which never loaded the wall: it was removed meanwhile) lists nothing near EAST.
    let empty = ObjectGhosts { full: true, first: true, last: true, objects: vec![] };
    east_applies(&mut p, third, &empty);
    let east = &p.zones[1].0;
    assert!(
        east.sim().object(EntityId(wall)).is_none(),
        "a dead neighbour's ghost outlives the full listing of its cell's new owner"
    );
}

/// Same as above, but node 3 first lists the wall (same version, it loaded it) and later
/// stops naming it: the ghost must follow its new sender.
#[test]
fn zobj_6_a_ghost_named_by_the_cells_new_owner_is_released_by_its_later_listings() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let wall = west_wall_ghosted_to_east(&mut p);
    let third = ZoneId(3);
    let owners: Vec<_> = p.epochs.iter().map(|(c, n, e)| (*c, if *n == WEST { third } else { *n }, *e)).collect();
    p.zones[1].1.set_owners(owners);
    let mut listing = ghosts(&p, 0, EAST, true);
    assert_eq!(listing.objects.len(), 1);
    assert_eq!(east_applies(&mut p, third, &listing), 0);
    listing.objects.clear();
    east_applies(&mut p, third, &listing);
    assert!(
        p.zones[1].0.sim().object(EntityId(wall)).is_none(),
        "the ghost stays tied to its dead first sender: node 3's listings never release it"
    );
}

/// EAST gains WEST's cell and loses it again before loading it (a flapping lease): `unload`
/// takes the ghost out of the simulation but leaves it in the ghost map. WEST's next full
/// listing names it at the same version, which must bring it back.
#[test]
fn zobj_6_a_ghost_taken_out_with_a_lost_cell_comes_back_with_the_next_listing() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let wall = west_wall_ghosted_to_east(&mut p);
    let cell = p.zones[1].1.tree().leaf_at(-1.0, 104.0);
    {
        let (east, t) = &mut p.zones[1];
        let tree = t.tree().clone();
        east.unload_objects(|at| tree.leaf_at(at.x, at.z) == cell);
    }
    assert!(p.zones[1].0.sim().object(EntityId(wall)).is_none());
    let listing = ghosts(&p, 0, EAST, true);
    assert_eq!(east_applies(&mut p, WEST, &listing), 0);
    let east = &p.zones[1].0;
    assert!(
        east.sim().object(EntityId(wall)).is_some(),
        "the wall never comes back: the ghost map still names it (is_ghost = {}) at its version, \
         so every listing is ignored",
        east.objects().is_ghost(EntityId(wall))
    );
}

// ---------------------------------------------------------------------------------------------
// Ghosts and the receiver's own objects.
// ---------------------------------------------------------------------------------------------

/// A peer plants a ghost under the id the store will give EAST's next object (serials are one
/// global counter: easy to guess). When EAST's own placement commits, `finish` finds the
/// object in the simulation and updates it, but the ghost map keeps it: the peer's next full
/// listing then removes EAST's own object from EAST's simulation (while its book keeps it).
#[test]
fn zobj_6_a_ghost_never_shadows_an_object_this_zone_commits() {
    let mut p = setup([-3.0, 1.0, 100.0], Some([5.0, 1.0, 100.0]));
    // Learn the serial counter from one of WEST's placements.
    let (o, first) = edit(&mut p, 0, 1, 1, place_op(WALL, Vec3::new(-5.0, 1.5, 103.0), 0));
    assert_eq!(o, EditOutcome::Committed);
    let serial = (first - pwn_sim::ids::OBJECT_ID_BASE) >> 16;
    let guessed = EntityId::object(serial + 1, WALL).0;
    // The planted ghost: in WEST's cell, near EAST, so it is accepted.
    let planted = WireObject {
        id: guessed,
        state: 0,
        version: 1,
        removed: false,
        position_m: [-6.0, 1.5, 110.0],
        rotation: [0.0, 0.0, 0.0, 1.0],
    };
    assert_eq!(
        east_applies(&mut p, WEST, &ObjectGhosts { full: false, first: true, last: true, objects: vec![planted] }),
        0
    );
    // EAST's player places its own wall.
    let (o, own) = edit(&mut p, 1, 2, 1, place_op(WALL, Vec3::new(5.0, 1.5, 104.0), 0));
    assert_eq!(o, EditOutcome::Committed);
    assert_eq!(own, guessed, "the serial guess missed; the attack needs the next id");
    // WEST's next full listing does not name it.
    east_applies(&mut p, WEST, &ObjectGhosts { full: true, first: true, last: true, objects: vec![] });
    let east = &p.zones[1].0;
    assert!(east.objects().get(EntityId(own)).is_some(), "EAST's book lost its own object");
    assert!(
        east.sim().object(EntityId(own)).is_some(),
        "a neighbour's listing removed EAST's own committed object from its simulation \
         (EAST's book still has it: {:?})",
        east.objects().get(EntityId(own))
    );
}

/// A ghost lands where EAST's player stands (WEST's check cannot see EAST's players; in a
/// mesh the player may also walk in while the edit waits for the store). `[zobj-4]` moves
/// characters out of a committed object; a ghost of one must not trap a player either.
#[test]
fn zobj_6_a_ghost_landing_on_a_player_of_the_receiver_does_not_trap_it() {
    let mut p = setup([-3.0, 1.0, 100.0], Some([0.5, 1.0, 104.0]));
    // Wall along x (yaw 0): spans x -3..1, z 103.8..104.2, over the border.
    let (o, wall) = edit(&mut p, 0, 1, 1, place_op(WALL, Vec3::new(-1.0, 1.5, 104.0), 0));
    assert_eq!(o, EditOutcome::Committed);
    let g = ghosts(&p, 0, EAST, false);
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    let east = &mut p.zones[1].0;
    east.tick();
    let r = east.sim().config().character.radius_m;
    let at = east.sim().character(EntityId(2)).unwrap().position_m;
    let inside = at.x < 1.0 + r - 0.02 && (at.z - 104.0).abs() < 0.2 + r - 0.02;
    assert!(!inside, "EAST's player stays inside the ghost wall {wall} at {at}");
}

// ---------------------------------------------------------------------------------------------
// Ghost versions, removal and motion.
// ---------------------------------------------------------------------------------------------

/// A removal (version `u64::MAX`) forgets the ghost entirely, so an older placement of the
/// same object delivered after it (a listing taken before the removal, arriving late)
/// places it again: a ghost must only move to newer versions, removal included.
#[test]
fn zobj_6_a_removed_ghost_does_not_come_back_with_an_older_version() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let wall = west_wall_ghosted_to_east(&mut p);
    let old_listing = ghosts(&p, 0, EAST, false);
    let at = Vec3::new(-1.0, 1.5, 104.0);
    east_applies(
        &mut p,
        WEST,
        &ObjectGhosts { full: false, first: true, last: true, objects: vec![removal(wall, at)] },
    );
    assert!(p.zones[1].0.sim().object(EntityId(wall)).is_none());
    east_applies(&mut p, WEST, &old_listing);
    assert!(p.zones[1].0.sim().object(EntityId(wall)).is_none(), "a removed ghost came back from an older version");
}

/// WEST moves its wall out of the ghost margin (90 m) of EAST's cells: the update sent to
/// EAST names the new position, which EAST's accept check refuses as not near, so EAST keeps
/// the wall at its old place (until the next full listing, up to 5 s later).
#[test]
fn zobj_6_a_ghost_moved_out_of_the_margin_is_released_at_once() {
    let mut p = setup([-90.0, 1.0, 104.0], None);
    let (o, wall) = edit(&mut p, 0, 1, 1, place_op(WALL, Vec3::new(-87.0, 1.5, 104.0), 16_384));
    assert_eq!(o, EditOutcome::Committed);
    let g = ghosts(&p, 0, EAST, false);
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    assert!(p.zones[1].0.objects().is_ghost(EntityId(wall)));
    let to = Vec3::new(-94.0, 1.5, 104.0);
    let op = EditOp::Move { object: wall, position: quantize_position(to), yaw: 16_384 };
    assert_eq!(edit(&mut p, 0, 1, 2, op).0, EditOutcome::Committed);
    // What `send_object_ghosts(false, Some(edited))` sends EAST: was_at is near EAST.
    let wire = p.zones[0].0.object_wire(EntityId(wall)).unwrap();
    east_applies(&mut p, WEST, &ObjectGhosts { full: false, first: true, last: true, objects: vec![wire] });
    let east = &p.zones[1].0;
    let held = east.sim().object(EntityId(wall)).map(|o| o.position_m);
    assert!(
        held.is_none() || held == Some(Vec3::from(wire.position_m)),
        "EAST still shows the moved wall where it was: {held:?} (WEST has it at {to})"
    );
}

/// A dynamic object's ghost is a dynamic body in EAST: EAST's player pushes it away, and
/// WEST's full listing, at the same version (the object was not edited), never puts it back
/// where WEST has it. Ghosts are read-only; the receiver shows the owner's object.
#[test]
fn zobj_6_a_dynamic_ghost_stays_where_its_owner_has_it() {
    let mut p = setup([-3.0, 1.0, 100.0], Some([1.5, 1.0, 104.0]));
    let (o, block) = edit(&mut p, 0, 1, 1, place_op(BLOCK, Vec3::new(-0.8, 0.5, 104.0), 0));
    assert_eq!(o, EditOutcome::Committed);
    let g = ghosts(&p, 0, EAST, false);
    assert_eq!(east_applies(&mut p, WEST, &g), 0);
    settle(&mut p.zones[0].0);
    walk_west(&mut p.zones[1].0, 2, 60);
    let listing = ghosts(&p, 0, EAST, true);
    east_applies(&mut p, WEST, &listing);
    let west_has = p.zones[0].0.sim().object(EntityId(block)).unwrap().position_m;
    let east_has = p.zones[1].0.sim().object(EntityId(block)).map(|o| o.position_m);
    let off = east_has.map(|e| e.distance(west_has));
    assert!(
        off.is_some_and(|d| d < 0.1),
        "EAST shows WEST's block at {east_has:?}, WEST has it at {west_has} (off by {off:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// Full listings.
// ---------------------------------------------------------------------------------------------

/// A full listing cut short (the link dropped after a message with `last` false, or the
/// sender restarted) leaves its partial set behind; the next listing adds to it, so a ghost
/// named only by the aborted listing survives a complete listing that does not name it.
#[test]
fn zobj_6_a_listing_cut_short_does_not_keep_ghosts_alive_through_the_next_one() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let wall = west_wall_ghosted_to_east(&mut p);
    let mut cut = ghosts(&p, 0, EAST, true);
    cut.last = false;
    assert_eq!(east_applies(&mut p, WEST, &cut), 0);
    // The link drops; WEST removes the wall meanwhile (the removal is lost with the link).
    // The next complete listing does not name it.
    east_applies(&mut p, WEST, &ObjectGhosts { full: true, first: true, last: true, objects: vec![] });
    assert!(
        p.zones[1].0.sim().object(EntityId(wall)).is_none(),
        "the wall survives a complete listing that does not name it"
    );
}

/// A peer that never ends its full listing (`last` false forever), naming new ids each time
/// (removals cost it nothing and place nothing), grows EAST's per-sender listing set without
/// bound. The book should stay bounded by what EAST may actually hold.
#[test]
fn zobj_6_an_endless_full_listing_does_not_grow_the_receivers_memory_without_bound() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let base = format!("{:?}", p.zones[1].0.objects()).len();
    let at = Vec3::new(-5.0, 1.5, 104.0);
    let mut serial = 1_000_000u64;
    for _ in 0..40 {
        let objects: Vec<WireObject> = (0..pwn_proto::OBJECT_GHOSTS_PER_MESSAGE_MAX)
            .map(|_| {
                serial += 1;
                removal(EntityId::object(serial, WALL).0, at)
            })
            .collect();
        assert_eq!(east_applies(&mut p, WEST, &ObjectGhosts { full: true, first: false, last: false, objects }), 0);
    }
    let grown = format!("{:?}", p.zones[1].0.objects()).len();
    assert_eq!(p.zones[1].0.objects().ghost_count(), 0);
    assert!(
        grown < base + 100_000,
        "EAST's object book grew from {base} to {grown} bytes of Debug text on 20,480 ids that \
         name no ghost it holds"
    );
}

/// A neighbour floods ghosts (each one accepted: in its cell, near EAST), far more than its
/// cells may hold. EAST holds at most `GHOSTS_PER_NEIGHBOUR_MAX` of one sender's objects.
#[test]
fn zobj_6_a_neighbour_cannot_hold_more_ghosts_here_than_its_cells_may_hold_objects() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    // The bound a zone holds a neighbour's ghosts to (`GHOSTS_PER_NEIGHBOUR_MAX`, four cells'
    // worth: a neighbour may have several cells within the margin).
    let cap = pwn_zone_node::objects::GHOSTS_PER_NEIGHBOUR_MAX;
    let mut serial = 2_000_000u64;
    let mut sent = 0;
    while sent <= cap + 512 {
        let objects: Vec<WireObject> = (0..pwn_proto::OBJECT_GHOSTS_PER_MESSAGE_MAX)
            .map(|i| {
                serial += 1;
                let x = -1.0 - (i % 64) as f32 * 0.5;
                let z = 60.0 + (sent / 512) as f32 * 2.0;
                WireObject {
                    id: EntityId::object(serial, WALL).0,
                    state: 0,
                    version: 1,
                    removed: false,
                    position_m: [x, 1.5, z],
                    rotation: [0.0, 0.0, 0.0, 1.0],
                }
            })
            .collect();
        sent += objects.len();
        east_applies(&mut p, WEST, &ObjectGhosts { full: false, first: true, last: true, objects });
    }
    let held = p.zones[1].0.objects().ghost_count();
    assert!(held <= cap, "EAST holds {held} ghosts of WEST, more than WEST's cells may hold ({cap})");
}

// ---------------------------------------------------------------------------------------------
// Reservations (`[zobj-4]`).
// ---------------------------------------------------------------------------------------------

/// Sanity: a reservation refused before submit (the shell's `submit` failed) holds nothing,
/// and one whose zone lost its cell meanwhile is released too.
#[test]
fn zobj_4_an_edit_finished_with_any_outcome_holds_nothing() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    let epochs = p.epochs.clone();
    let (zone, territory) = &mut p.zones[0];
    let served = Served { territory, epochs: &epochs, me: WEST };
    let at = Vec3::new(-3.0, 1.5, 104.0);
    let req = EditObject { request: 1, op: place_op(WALL, at, 0) };
    let v = zone.check_edit(&served, EntityId(1), &req).unwrap();
    assert_eq!(zone.objects().pending(), 1);
    zone.finish_edit(&served, &v, &Err(EditOutcome::Busy));
    assert_eq!(zone.objects().pending(), 0);
    let v = zone.check_edit(&served, EntityId(1), &EditObject { request: 2, ..req }).unwrap();
    // The cell is lost before the outcome comes back.
    let none = Served { territory, epochs: &[], me: WEST };
    zone.finish_edit(&none, &v, &Err(EditOutcome::Stale));
    assert_eq!(zone.objects().pending(), 0);
    assert!(zone.check_edit(&served, EntityId(1), &EditObject { request: 3, ..req }).is_ok());
}

/// Reservations are keyed by (player, request): a client sending two different edits under
/// one request number has both reserved, and the first to finish releases the other's hold
/// while it still waits for the store. A third edit into that space must stay `Blocked`.
#[test]
fn zobj_4_a_reservation_is_released_only_by_its_own_edit() {
    let mut p = setup([-3.0, 1.0, 100.0], None);
    {
        let (z, t) = &mut p.zones[0];
        place(z, t, 3, [-3.0, 1.0, 108.0]);
        settle(z);
    }
    let epochs = p.epochs.clone();
    let bounds = Bounds { origin_m: world().origin_m, size_m: world().size_m };
    let (zone, territory) = &mut p.zones[0];
    let served = Served { territory, epochs: &epochs, me: WEST };
    let a = EditObject { request: 7, op: place_op(WALL, Vec3::new(-3.0, 1.5, 103.0), 0) };
    let b = EditObject { request: 7, op: place_op(WALL, Vec3::new(-3.0, 1.5, 105.0), 0) };
    let va = zone.check_edit(&served, EntityId(1), &a).unwrap();
    let vb = zone.check_edit(&served, EntityId(1), &b).unwrap();
    assert_eq!(zone.objects().pending(), 2);
    let done = commit(&p.store, &va, &bounds);
    zone.finish_edit(&served, &va, &done);
    assert_eq!(zone.objects().pending(), 1, "finishing one edit released the other's reservation too");
    let c = EditObject { request: 1, op: place_op(WALL, Vec3::new(-3.0, 1.5, 105.1), 0) };
    assert_eq!(zone.check_edit(&served, EntityId(3), &c).unwrap_err(), EditOutcome::Blocked);
    let _ = vb;
}

#[allow(dead_code)]
fn unused() -> Quat {
    Quat::IDENTITY
}
