//! Attacks on world objects and moving platforms in the simulation: bad world files are refused
//! rather than panicking, platform arithmetic holds for any tick, objects never end up inside
//! characters or solids, and snapshots keep objects intact.

mod common;

use common::*;
use glam::{Quat, Vec3};
use pwn_sim::object::Editors;
use pwn_sim::{EntityId, ObjectKind, ObjectRefused, PlatformDesc, PlatformPath, Sim, SimConfig, WorldDesc};

const WALL: u16 = 0;
const DOOR: u16 = 1;
const BLOCK: u16 = 2;
const GHOST_BLOCK: u16 = 3;
const SLAB: u16 = 4;

fn kind(name: &str, h: [f32; 3], dynamic: bool, states: u16, passable: Vec<u16>) -> ObjectKind {
    ObjectKind {
        name: name.into(),
        half_extents_m: h,
        dynamic,
        density_kgpm3: 100.0,
        states,
        passable_states: passable,
        editors: Editors::Anyone,
    }
}

fn kinds() -> Vec<ObjectKind> {
    vec![
        kind("wall", [2.0, 1.5, 0.2], false, 1, vec![]),
        kind("door", [1.0, 1.5, 0.1], false, 2, vec![1]),
        kind("block", [0.5, 0.5, 0.5], true, 1, vec![]),
        // A dynamic kind with a passable state (a "ghost" crate that can be walked through).
        kind("ghost block", [0.5, 0.5, 0.5], true, 2, vec![1]),
        kind("slab", [3.0, 0.2, 3.0], false, 1, vec![]),
    ]
}

fn lift() -> PlatformDesc {
    PlatformDesc {
        half_extents_m: [2.0, 0.25, 2.0],
        path_m: vec![[10.0, 0.25, 10.0], [10.0, 6.25, 10.0]],
        speed_mps: 2.0,
        pause_s: 1.0,
        closed: false,
    }
}

fn world() -> WorldDesc {
    WorldDesc { object_kinds: kinds(), ..world_with(vec![block([-20.0, 1.0, -20.0], [2.0, 1.0, 2.0])]) }
}

fn obj(serial: u64, kind: u16) -> EntityId {
    EntityId::object(serial, kind)
}

fn no_input() -> std::collections::BTreeMap<EntityId, pwn_sim::PlayerInput> {
    Default::default()
}

/// Whether a character capsule centred at `p` overlaps an axis-aligned box (bounding boxes).
fn capsule_in_box(s: &Sim, p: Vec3, centre: Vec3, h: [f32; 3]) -> bool {
    let c = &s.config().character;
    let tall = c.half_height_m + c.radius_m;
    (p.x - centre.x).abs() < h[0] + c.radius_m - 0.05
        && (p.z - centre.z).abs() < h[2] + c.radius_m - 0.05
        && (p.y - centre.y).abs() < h[1] + tall - 0.05
}

// ---------------------------------------------------------------- world files

/// A platform so slow its travel time does not fit in a u64 of ticks is either refused by
/// validation or built; never a panic (an operator's file is untrusted).
#[test]
fn a_platform_too_slow_to_finish_its_path_is_refused_not_a_panic() {
    for speed in [1e-30f32, 1e-20, f32::MIN_POSITIVE] {
        let mut w = world();
        w.platforms = vec![PlatformDesc { speed_mps: speed, pause_s: 1.0, ..lift() }];
        let built = std::panic::catch_unwind(|| Sim::new(w.clone(), SimConfig::default(), 1).map(|s| s.tick()));
        assert!(built.is_ok(), "Sim::new panicked on a platform of speed {speed} m/s");
    }
}

#[test]
fn a_toml_platform_too_slow_is_refused_at_load_or_runs() {
    let text = r#"
        name = "slow"
        origin_m = [-100.0, -100.0]
        size_m = [200.0, 200.0]
        ground_y_m = 0.0
        spawn_points = [[0.0, 1.0, 0.0]]
        [[platform]]
        half_extents_m = [2.0, 0.25, 2.0]
        path_m = [[0.0, 0.25, 0.0], [0.0, 6.25, 0.0]]
        speed_mps = 1e-30
        pause_s = 600.0
    "#;
    let outcome = std::panic::catch_unwind(|| match WorldDesc::from_toml(text) {
        Ok(w) => Sim::new(w, SimConfig::default(), 1).map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    });
    assert!(outcome.is_ok(), "loading a world file with a very slow platform panicked");
}

#[test]
fn a_platform_whose_waypoints_are_all_the_same_point_stays_put() {
    let mut w = world();
    w.platforms = vec![
        PlatformDesc { path_m: vec![[0.0, 0.25, 30.0]; 2], pause_s: 0.0, ..lift() },
        PlatformDesc { path_m: vec![[5.0, 0.25, 30.0]; 32], pause_s: 0.0, closed: true, ..lift() },
    ];
    let mut s = sim(w);
    for _ in 0..200 {
        s.step(&no_input());
    }
    assert_eq!(s.platform_positions()[0], pwn_sim::quantize::snap_position(Vec3::new(0.0, 0.25, 30.0)));
    assert_eq!(s.platform_positions()[1], pwn_sim::quantize::snap_position(Vec3::new(5.0, 0.25, 30.0)));
}

#[test]
fn platform_poses_are_defined_for_every_tick() {
    let cfg = SimConfig::default();
    let p = PlatformPath::new(&lift(), &cfg);
    for t in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
        let at = p.position_at(t);
        assert!(at.is_finite() && (0.25..=6.25).contains(&at.y), "tick {t}: {at}");
    }
}

#[test]
fn platform_pose_between_ticks_is_defined_for_any_time() {
    let cfg = SimConfig::default();
    let p = PlatformPath::new(&lift(), &cfg);
    for t in [-1.0, 0.5, 1e18, 1.8446744073709552e19, 1e30, f64::INFINITY, f64::NAN] {
        let at = std::panic::catch_unwind(|| p.position_between(t));
        assert!(at.is_ok(), "position_between({t}) panicked");
        let at = at.unwrap();
        assert!(at.is_finite(), "position_between({t}) = {at}");
    }
}

#[test]
fn prediction_at_extreme_ticks_does_not_panic() {
    let mut w = world();
    w.platforms = vec![lift()];
    let mut s = sim(w);
    let me = place(&mut s, 1, 10.0, 10.0);
    for (n, t) in [0u64, 1, u64::MAX - 1, u64::MAX].into_iter().enumerate() {
        s.predict_step_at(me, input(n as u32 + 1, 0.0, 1.0, 0), t).unwrap();
        assert!(s.character(me).unwrap().position_m.is_finite());
    }
}

/// Kinds whose states make a dynamic body lose its collider: either refused by the world file,
/// or the body does not fall forever through the ground.
#[test]
fn a_dynamic_object_in_a_passable_state_does_not_fall_out_of_the_world() {
    let w = world();
    if w.validate().is_err() {
        return; // refused: fine
    }
    let mut s = sim(w);
    let g = obj(1, GHOST_BLOCK);
    s.place_object(g, Vec3::new(5.0, 0.5, 5.0), Quat::IDENTITY, 0).unwrap();
    s.set_object_state(g, 1).unwrap();
    for _ in 0..600 {
        s.step(&no_input());
    }
    let y = s.object(g).unwrap().position_m.y;
    assert!(y > -10.0, "a passable dynamic object fell through the ground to y = {y} m in 10 s");
    // And once it is there, the simulation cannot even put it back where it is.
    let o = s.object(g).unwrap();
    assert_eq!(s.set_object_motion(g, o.position_m, o.rotation, o.linvel_mps, o.angvel_rps), Ok(()));
}

// ---------------------------------------------------------------- overlap test

#[test]
fn the_overlap_test_finds_statics_crates_objects_characters_and_platforms() {
    let mut w = world();
    w.platforms = vec![lift()];
    w.crates =
        vec![pwn_sim::CrateDesc { center_m: [20.0, 0.5, 20.0], half_extents_m: [0.5, 0.5, 0.5], density_kgpm3: 100.0 }];
    let mut s = sim(w);
    for _ in 0..5 {
        s.step(&no_input());
    }
    let me = place(&mut s, 1, -5.0, -5.0);
    let wall = obj(1, WALL);
    s.place_object(wall, Vec3::new(5.0, 1.5, -5.0), Quat::IDENTITY, 0).unwrap();
    let up = Quat::IDENTITY;
    // Static box.
    assert!(s.object_blocked(BLOCK, Vec3::new(-20.0, 1.0, -20.0), up, None).is_some(), "inside a static box");
    // Crate.
    let crate_at = s.crates().next().unwrap().1;
    assert!(s.object_blocked(BLOCK, crate_at, up, None).is_some(), "inside a crate");
    // Another object, even one placed this very tick.
    assert_eq!(s.object_blocked(WALL, Vec3::new(5.0, 1.5, -5.0), up, None), Some(wall));
    assert_eq!(s.object_blocked(WALL, Vec3::new(5.0, 1.5, -5.0), up, Some(wall)), None, "ignore works");
    // A character.
    let c = s.character(me).unwrap().position_m;
    assert_eq!(s.object_blocked(BLOCK, c, up, None), Some(me));
    // A platform where it is now.
    let at = s.platform_positions()[0];
    assert!(s.object_blocked(BLOCK, at, up, None).is_some(), "inside a platform");
    // Free space.
    assert_eq!(s.object_blocked(BLOCK, Vec3::new(40.0, 0.6, 40.0), up, None), None);
    // Unknown kinds: the test answers "nothing in the way" (the caller must check the kind).
    assert_eq!(s.object_blocked(u16::MAX, Vec3::new(40.0, 0.6, 40.0), up, None), None);
}

#[test]
fn hostile_object_requests_are_refused_without_panicking() {
    let mut s = sim(world());
    let w = obj(1, WALL);
    let r = Quat::IDENTITY;
    let p = Vec3::new(5.0, 1.5, 5.0);
    assert_eq!(s.place_object(obj(2, 999), p, r, 0), Err(ObjectRefused::UnknownKind));
    assert_eq!(s.place_object(obj(2, u16::MAX), p, r, 0), Err(ObjectRefused::UnknownKind));
    assert_eq!(s.place_object(EntityId(5), p, r, 0), Err(ObjectRefused::UnknownKind));
    assert_eq!(s.place_object(EntityId(u64::MAX), p, r, 0), Err(ObjectRefused::UnknownKind));
    for bad in [Vec3::NAN, Vec3::INFINITY, Vec3::new(1e9, 0.0, 0.0), Vec3::new(0.0, 5000.0, 0.0)] {
        assert_eq!(s.place_object(w, bad, r, 0), Err(ObjectRefused::BadPose), "{bad}");
    }
    for bad in [Quat::from_xyzw(0.0, 0.0, 0.0, 0.0), Quat::from_xyzw(f32::NAN, 0.0, 0.0, 1.0)] {
        assert_eq!(s.place_object(w, p, bad, 0), Err(ObjectRefused::BadPose));
    }
    assert_eq!(s.place_object(w, p, r, 1), Err(ObjectRefused::BadState));
    // A non-unit rotation is normalized, not refused.
    s.place_object(w, p, Quat::from_xyzw(0.0, 0.0, 0.0, 3.0), 0).unwrap();
    assert_eq!(s.place_object(w, p, r, 0), Err(ObjectRefused::Duplicate));
    assert_eq!(s.set_object_state(w, 1), Err(ObjectRefused::BadState));
    assert_eq!(s.set_object_state(w, u16::MAX), Err(ObjectRefused::BadState));
    assert_eq!(s.set_object_state(obj(9, WALL), 0), Err(ObjectRefused::Missing));
    assert_eq!(s.move_object(obj(9, WALL), p, r), Err(ObjectRefused::Missing));
    assert_eq!(s.set_object_motion(w, p, r, Vec3::NAN, Vec3::ZERO), Err(ObjectRefused::BadPose));
    assert!(s.remove_object(obj(9, WALL)).is_none());
    assert!(s.remove_object(w).is_some());
    assert!(s.remove_object(w).is_none());
    for _ in 0..3 {
        s.step(&no_input());
    }
}

// ---------------------------------------------------------------- platforms and objects

/// A slab placed across a lift's path while the lift is away passes the overlap test; when the
/// lift comes up, its rider must not be carried into (or through) the slab.
#[test]
fn a_rider_is_not_carried_into_an_object_placed_across_the_lift_path() {
    let mut w = world();
    w.platforms = vec![lift()];
    let mut s = sim(w);
    let c = s.config().character.clone();
    let top = 0.5;
    let at = Vec3::new(10.0, top + c.half_height_m + c.radius_m + 0.04, 10.0);
    s.insert_character(EntityId(1), pwn_sim::CharacterState::spawned_at(at, s.config())).unwrap();
    let me = EntityId(1);
    for _ in 0..10 {
        s.step(&no_input());
    }
    // A slab 4 m up, across the lift's shaft.
    let slab_at = Vec3::new(10.0, 4.0, 10.0);
    let free = s.object_blocked(SLAB, slab_at, Quat::IDENTITY, None);
    if free.is_some() {
        return; // The overlap test refuses objects on a platform's path: fine.
    }
    s.place_object(obj(1, SLAB), slab_at, Quat::IDENTITY, 0).unwrap();
    // The slab's underside is at 3.8 m; a standing capsule reaches 0.9 m above its centre.
    let reach_up = c.half_height_m + c.radius_m;
    let mut highest = f32::MIN;
    for _ in 0..400 {
        s.step(&no_input());
        highest = highest.max(s.character(me).unwrap().position_m.y);
    }
    let underside = slab_at.y - 0.2;
    assert!(
        highest + reach_up <= underside + 0.01,
        "the rider was carried into the slab: head at {} m, the slab's underside at {underside} m (centre reached {highest} m)",
        highest + reach_up
    );
}

/// A ferry pushes characters in its way (without testing collisions: `platform::carry`), so
/// nothing may be placed where it goes or where it pushes to: a wall across its path, or just
/// beyond its end, is refused.
#[test]
fn a_wall_across_a_platforms_path_or_where_it_pushes_to_is_refused() {
    let ferry = PlatformDesc {
        half_extents_m: [1.5, 0.5, 1.5],
        path_m: vec![[-10.0, 0.5, 0.0], [10.0, 0.5, 0.0]],
        speed_mps: 3.0,
        pause_s: 0.0,
        closed: false,
    };
    let mut w = world();
    w.platforms = vec![ferry];
    let s = sim(w);
    let turn = Quat::from_rotation_y(std::f32::consts::FRAC_PI_2);
    // Across the path, while the ferry is away at x = -10.
    assert_eq!(s.object_blocked(WALL, Vec3::new(5.0, 1.5, 0.0), turn, None), Some(EntityId(0)));
    // Just past the end, where a pushed character is carried to (half width plus its diameter).
    assert_eq!(s.object_blocked(WALL, Vec3::new(12.2, 1.5, 0.0), turn, None), Some(EntityId(0)));
    // Well clear of it: allowed.
    assert_eq!(s.object_blocked(WALL, Vec3::new(16.0, 1.5, 0.0), turn, None), None);
}

// ---------------------------------------------------------------- spawning

/// A wall placed on a spawn point while nobody stands there: a character spawning there must
/// not appear inside it.
#[test]
fn a_character_does_not_spawn_inside_an_object() {
    let mut w = world();
    w.spawn_points = vec![[30.0, 1.0, 30.0]];
    let mut s = sim(w);
    let wall_at = Vec3::new(30.0, 1.5, 30.0);
    assert_eq!(s.object_blocked(WALL, wall_at, Quat::IDENTITY, None), None, "nobody there yet");
    s.place_object(obj(1, WALL), wall_at, Quat::IDENTITY, 0).unwrap();
    s.spawn_character(EntityId(1)).unwrap();
    let p = s.character(EntityId(1)).unwrap().position_m;
    assert!(!capsule_in_box(&s, p, wall_at, [2.0, 1.5, 0.2]), "spawned at {p}, inside the wall at {wall_at}");
}

// ---------------------------------------------------------------- snapshots

#[test]
fn restoring_a_snapshot_restores_objects_exactly() {
    let mut s = sim(world());
    let wall = obj(1, WALL);
    let door = obj(2, DOOR);
    let blk = obj(3, BLOCK);
    s.place_object(wall, Vec3::new(5.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    s.place_object(door, Vec3::new(-5.0, 1.5, 5.0), Quat::IDENTITY, 1).unwrap();
    s.place_object(blk, Vec3::new(0.0, 3.0, 8.0), Quat::IDENTITY, 0).unwrap();
    for _ in 0..10 {
        s.step(&no_input());
    }
    let snap = s.snapshot();
    let hash = s.state_hash();
    // Diverge: remove, change, place, step.
    s.remove_object(wall);
    s.set_object_state(door, 0).unwrap();
    s.place_object(obj(4, WALL), Vec3::new(15.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    for _ in 0..10 {
        s.step(&no_input());
    }
    s.restore(&snap);
    assert_eq!(s.state_hash(), hash);
    assert_eq!(s.object_count(), 3);
    assert!(s.object(obj(4, WALL)).is_none());
    assert_eq!(s.object(door).unwrap().state, 1);
    // The restored world runs like one that never diverged, and accepts edits.
    let mut twin = sim(world());
    twin.place_object(wall, Vec3::new(5.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    twin.place_object(door, Vec3::new(-5.0, 1.5, 5.0), Quat::IDENTITY, 1).unwrap();
    twin.place_object(blk, Vec3::new(0.0, 3.0, 8.0), Quat::IDENTITY, 0).unwrap();
    for _ in 0..10 {
        twin.step(&no_input());
    }
    assert_eq!(twin.state_hash(), hash);
    for _ in 0..30 {
        s.step(&no_input());
        twin.step(&no_input());
    }
    assert_eq!(s.state_hash(), twin.state_hash());
    s.set_object_state(door, 0).unwrap();
    assert!(s.remove_object(wall).is_some());
    s.place_object(obj(4, WALL), Vec3::new(15.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    s.step(&no_input());
}

/// The overlap test lets objects sink into the ground; a dynamic one placed deep under it (the
/// zone allows anything within reach of the player, 8 m) must not be shot out of the ground.
#[test]
fn a_dynamic_object_placed_under_the_ground_is_not_launched() {
    let mut s = sim(world());
    let b = obj(1, BLOCK);
    let at = Vec3::new(5.0, -6.0, 5.0);
    assert_eq!(s.object_blocked(BLOCK, at, Quat::IDENTITY, None), None, "sinking into the ground is allowed");
    s.place_object(b, at, Quat::IDENTITY, 0).unwrap();
    let (mut fastest, mut highest) = (0.0f32, f32::MIN);
    for _ in 0..300 {
        s.step(&no_input());
        let o = s.object(b).unwrap();
        fastest = fastest.max(o.linvel_mps.length());
        highest = highest.max(o.position_m.y);
    }
    assert!(fastest < 20.0 && highest < 3.0, "launched out of the ground: {fastest} m/s, up to y = {highest} m");
}
