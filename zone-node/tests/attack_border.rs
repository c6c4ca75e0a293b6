//! Hostile and replayed neighbour messages against the zone core's border handling
//! (`crate::border`): each test states what must hold and fails if the core lets it break.

use pwn_partitioner::{Epoch, Quadtree, ZoneId};
use pwn_proto::{ExactInput, GhostHit, GhostState, HandoffPlayer, WireCell, WireCharacter};
use pwn_sim::{Buttons, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_zone_node::persist::PlayerState;
use pwn_zone_node::territory::{BorderConfig, Territory};
use pwn_zone_node::zone::{Zone, ZoneConfig};

const A: ZoneId = ZoneId(1);
const B: ZoneId = ZoneId(2);

fn zone() -> Zone {
    Zone::new(Sim::new(WorldDesc::arena(), SimConfig::default(), 1).unwrap(), ZoneConfig::default())
}

/// Node A serves the cell west of x = 0 at z = -60, node B the one east of it; the other two
/// quadrants are A's too.
fn territory(me: ZoneId) -> (Territory, CellKey, CellKey) {
    let desc = WorldDesc::arena();
    let tree = Quadtree::uniform(desc.origin_m, desc.size_m, 1).unwrap();
    let west = tree.leaf_at(-20.0, -60.0);
    let east = tree.leaf_at(20.0, -60.0);
    let mut owners = Vec::new();
    for c in tree.leaves() {
        let node = if c == east { B } else { A };
        owners.push((c, node, Epoch(1)));
    }
    let mut t = Territory::new(tree, me, BorderConfig::default());
    t.set_owners(owners);
    (t, west, east)
}

fn wire_cell(c: CellKey) -> WireCell {
    WireCell { level: c.level, path: c.path }
}

/// A handoff of player 5 from A's west cell to B's east cell, standing at `x`, running west
/// (its last input repeats while no fresh one arrives).
fn handoff(x: f32, west: CellKey, east: CellKey) -> HandoffPlayer {
    let cfg = SimConfig::default();
    let mut c = PlayerState { id: EntityId(5), position: glam::Vec3::new(x, 1.0, -60.0), yaw_rad: 0.0, health: 100 }
        .character(&cfg)
        .unwrap();
    c.last_input = PlayerInput {
        seq: InputSeq(10),
        move_x: 0.0,
        move_z: 1.0,
        yaw_rad: -std::f32::consts::FRAC_PI_2,
        pitch_rad: 0.0,
        buttons: Buttons(Buttons::RUN),
        view_tick: 0,
    };
    c.last_seq = Some(InputSeq(10));
    HandoffPlayer {
        player: 5,
        tick: 100,
        from_cell: wire_cell(west),
        to_cell: wire_cell(east),
        to_epoch: 1,
        character: WireCharacter::of(&c),
        last_released: Some(10),
        waiting: Vec::new(),
    }
}

/// `[handoff-4]`, DESIGN invariant 5: the giving zone sends every committed `HandoffPlayer`
/// twice (once from the committer, `[handoff-6]`, and again from `on_committed` with the
/// waiting inputs). If the copy arrives after the player already left the taking zone again,
/// the taking zone must not start simulating it a second time: the player is then in two
/// zones (or in one the store does not name).
#[test]
fn attack_a_replayed_handoff_after_the_player_left_again_is_refused() {
    let (t_b, west, east) = territory(B);
    let mut b = zone();
    // Zones tick on the world clock: this one is where the handoff's tick is.
    b.join_clock(100);
    let h = handoff(5.0, west, east);
    assert!(b.arrive(&h, 0), "the first handoff is taken");
    // The player runs back west and B hands it to A.
    let mut gone = false;
    for _ in 0..200 {
        b.tick();
        for d in b.border_pass(&t_b) {
            assert_eq!(d.node, A);
            b.departed(d.player, B);
            gone = true;
        }
        if gone {
            break;
        }
    }
    assert!(gone && !b.has_player(EntityId(5)), "the player went back to A");
    // The second copy of the first handoff arrives now.
    let taken = b.arrive(&h, 0);
    assert!(!taken, "a stale copy of an old handoff put player 5 back into zone B, which no longer owns it");
}

/// Invariant 6: a handoff's state is checked before the character is simulated. The last
/// input a character repeats (`WireCharacter::last_input`) is never sanitized on this path:
/// a neighbour (or a bug) sending NaN there must not make the character's position NaN.
#[test]
fn attack_a_handoff_with_a_non_finite_last_input_is_refused_or_sanitized() {
    let (_, west, east) = territory(B);
    let mut b = zone();
    b.join_clock(100);
    let mut h = handoff(20.0, west, east);
    h.character.last_input = ExactInput { seq: 10, move_x: f32::NAN, move_z: 1.0, ..h.character.last_input };
    if b.arrive(&h, 0) {
        for _ in 0..5 {
            b.tick();
        }
        let at = b.sim().character(EntityId(5)).map(|c| c.position_m);
        assert!(at.is_some_and(|p| p.is_finite()), "player 5 simulated at {at:?}");
    }
}

/// Invariant 6: a huge (finite) velocity in a handoff must not throw the character out of the
/// world.
#[test]
fn attack_a_handoff_with_a_huge_velocity_keeps_the_character_in_the_world() {
    let (_, west, east) = territory(B);
    let mut b = zone();
    b.join_clock(100);
    let mut h = handoff(20.0, west, east);
    h.character.velocity_mps = [0.0, -1.0e30, 0.0];
    h.character.grounded = false;
    if b.arrive(&h, 0) {
        for _ in 0..5 {
            b.tick();
        }
        let at = b.sim().character(EntityId(5)).map(|c| c.position_m);
        assert!(at.is_some_and(|p| p.is_finite() && p.y.abs() < 8192.0), "player 5 simulated at {at:?}");
    }
}

/// `[ghost-2]`: a neighbour's hit deals at most what a projectile deals; a `GhostHit` with
/// any `damage` must not kill a full-health player in one message.
#[test]
fn attack_a_ghost_hit_cannot_deal_more_than_a_projectile() {
    let mut b = zone();
    b.join(EntityId(7)).unwrap();
    let before = b.sim().character(EntityId(7)).unwrap().health;
    let dealt = b.apply_ghost_hit(&GhostHit { projectile: 1, shooter: 99, target: 7, damage: u16::MAX });
    let max = SimConfig::default().projectile.damage;
    assert!(dealt <= max, "one remote hit dealt {dealt} (a projectile deals {max}); health was {before}");
}

/// `[ghost-1]`, `[ghost-3]`: a ghost batch stamped far in the future (a neighbour with a bad
/// clock, or a hostile one) must not make its ghosts immortal nor every later batch of that
/// sender "stale".
#[test]
fn attack_a_ghost_batch_from_the_future_does_not_pin_its_ghosts() {
    let mut b = zone();
    let cfg = SimConfig::default();
    let c = PlayerState { id: EntityId(9), position: glam::Vec3::new(-5.0, 1.0, -60.0), yaw_rad: 0.0, health: 100 }
        .character(&cfg)
        .unwrap();
    let g = GhostState { id: 9, character: WireCharacter::of(&c) };
    b.apply_ghosts(A, u64::MAX, true, &[g]);
    // The owner's real batches, without the ghost, at the real ticks.
    for _ in 0..60 {
        b.tick();
        let now = b.sim().tick().0;
        b.apply_ghosts(A, now, true, &[]);
        b.expire_ghosts(pwn_zone_node::border::GHOST_STALE_TICKS);
    }
    assert_eq!(
        b.ghost_count(),
        0,
        "the future batch's ghost is still held; later batches were counted stale: {}",
        b.border_counters().ghost_batches_stale
    );
}

/// A gateway attaching a player this zone holds as a ghost (its owner handed it here but the
/// `HandoffPlayer` was lost, `[zlink-2]`, and the park timed out) must be able to place it:
/// the ghost must give way to the real player.
#[test]
fn attack_a_player_held_as_a_ghost_can_still_be_placed_here() {
    let mut b = zone();
    let cfg = SimConfig::default();
    let c = PlayerState { id: EntityId(9), position: glam::Vec3::new(5.0, 1.0, -60.0), yaw_rad: 0.0, health: 100 }
        .character(&cfg)
        .unwrap();
    b.apply_ghosts(A, 1, true, &[GhostState { id: 9, character: WireCharacter::of(&c) }]);
    let placed = b.join_at(EntityId(9), Some(c));
    assert!(placed.is_ok(), "placing player 9 failed while it is a ghost here: {placed:?}");
}
