//! World objects in the simulation (`pwn_sim::object`): placed walls stop characters, an open
//! door lets them through, dynamic objects are shot and pushed, the overlap test finds what
//! is in the way, bad requests are refused, and snapshots keep objects deterministic.

mod common;

use common::*;
use glam::{Quat, Vec3};
use pwn_sim::object::Editors;
use pwn_sim::{Buttons, EntityId, HitTarget, ObjectKind, ObjectRefused, SimEvent, WorldDesc};

const WALL: u16 = 0;
const DOOR: u16 = 1;
const BLOCK: u16 = 2;

fn kinds() -> Vec<ObjectKind> {
    let kind = |name: &str, h: [f32; 3], dynamic: bool, states: u16, passable: Vec<u16>| ObjectKind {
        name: name.into(),
        half_extents_m: h,
        dynamic,
        density_kgpm3: 100.0,
        states,
        passable_states: passable,
        editors: Editors::Anyone,
    };
    vec![
        kind("wall", [3.0, 1.5, 0.2], false, 1, vec![]),
        kind("door", [3.0, 1.5, 0.2], false, 2, vec![1]),
        kind("block", [0.5, 0.5, 0.5], true, 1, vec![]),
    ]
}

fn world() -> WorldDesc {
    WorldDesc { object_kinds: kinds(), ..world_with(vec![]) }
}

fn walk_north(s: &mut pwn_sim::Sim, me: EntityId, ticks: u32) -> f32 {
    let path = run(s, me, 1, ticks, |_| input(0, 0.0, 1.0, Buttons::RUN));
    path.iter().map(|p| p.z).fold(f32::MIN, f32::max)
}

#[test]
fn a_placed_wall_stops_a_character_and_an_open_door_lets_it_through() {
    let mut s = sim(world());
    let wall = EntityId::object(1, WALL);
    s.place_object(wall, Vec3::new(0.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    let me = place(&mut s, 1, 0.0, 0.0);
    assert!(walk_north(&mut s, me, 90) < 5.0, "walked through a placed wall");

    let mut s = sim(world());
    let door = EntityId::object(2, DOOR);
    s.place_object(door, Vec3::new(0.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    s.set_object_state(door, 1).unwrap();
    let me = place(&mut s, 1, 0.0, 0.0);
    assert!(walk_north(&mut s, me, 90) > 6.0, "an open door still blocked");
    assert_eq!(s.object(door).unwrap().state, 1);
}

#[test]
fn a_removed_wall_no_longer_blocks() {
    let mut s = sim(world());
    let wall = EntityId::object(1, WALL);
    s.place_object(wall, Vec3::new(0.0, 1.5, 5.0), Quat::IDENTITY, 0).unwrap();
    assert!(s.remove_object(wall).is_some());
    assert_eq!(s.object_count(), 0);
    let me = place(&mut s, 1, 0.0, 0.0);
    assert!(walk_north(&mut s, me, 90) > 6.0);
}

#[test]
fn the_overlap_test_finds_characters_boxes_and_objects_but_not_the_ground() {
    let mut s = sim(WorldDesc { object_kinds: kinds(), ..world_with(vec![block([20.0, 1.0, 0.0], [1.0, 1.0, 1.0])]) });
    let me = place(&mut s, 7, 0.0, 0.0);
    s.step(&Default::default());
    let at = |x: f32, z: f32| Vec3::new(x, 0.5, z);
    assert_eq!(s.object_blocked(BLOCK, at(0.0, 0.0), Quat::IDENTITY, None), Some(me));
    assert_eq!(s.object_blocked(BLOCK, at(20.0, 0.0), Quat::IDENTITY, None), Some(EntityId(0)));
    // Sunk into the ground but otherwise free.
    assert_eq!(s.object_blocked(BLOCK, Vec3::new(10.0, 0.2, 10.0), Quat::IDENTITY, None), None);
    let wall = EntityId::object(3, WALL);
    s.place_object(wall, Vec3::new(-10.0, 1.5, 0.0), Quat::IDENTITY, 0).unwrap();
    assert_eq!(s.object_blocked(WALL, Vec3::new(-10.0, 1.5, 0.3), Quat::IDENTITY, None), Some(wall));
    // Moving an object over where it stands now is not blocked by itself.
    assert_eq!(s.object_blocked(WALL, Vec3::new(-10.0, 1.5, 0.3), Quat::IDENTITY, Some(wall)), None);
}

#[test]
fn a_dynamic_object_is_shot_falls_and_comes_to_rest() {
    let mut s = sim(world());
    let block_id = EntityId::object(4, BLOCK);
    s.place_object(block_id, Vec3::new(0.0, 1.6, 8.0), Quat::IDENTITY, 0).unwrap();
    let shooter = place(&mut s, 1, 0.0, 0.0);
    let mut events = Vec::new();
    for t in 0..90u32 {
        events.extend(step_one(&mut s, shooter, input(t + 1, 0.0, 0.0, if t == 0 { Buttons::FIRE } else { 0 })).events);
    }
    assert!(
        events.iter().any(|e| matches!(e, SimEvent::Hit { target: HitTarget::Object(id), .. } if *id == block_id)),
        "{events:?}"
    );
    let o = s.object(block_id).unwrap();
    assert!(o.position_m.z > 8.05, "not pushed by the shot: {o:?}");
    assert!(o.position_m.y < 0.6, "did not fall to the ground: {o:?}");
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let mut s = sim(world());
    let id = EntityId::object(1, WALL);
    let at = Vec3::new(0.0, 1.5, 5.0);
    assert_eq!(s.place_object(EntityId(5), at, Quat::IDENTITY, 0), Err(ObjectRefused::UnknownKind));
    assert_eq!(s.place_object(EntityId::object(1, 99), at, Quat::IDENTITY, 0), Err(ObjectRefused::UnknownKind));
    assert_eq!(s.place_object(id, Vec3::new(f32::NAN, 0.0, 0.0), Quat::IDENTITY, 0), Err(ObjectRefused::BadPose));
    assert_eq!(s.place_object(id, Vec3::new(500.0, 0.0, 0.0), Quat::IDENTITY, 0), Err(ObjectRefused::BadPose));
    assert_eq!(s.place_object(id, at, Quat::from_xyzw(0.0, 0.0, 0.0, 0.0), 0), Err(ObjectRefused::BadPose));
    assert_eq!(s.place_object(id, at, Quat::IDENTITY, 1), Err(ObjectRefused::BadState));
    s.place_object(id, at, Quat::IDENTITY, 0).unwrap();
    assert_eq!(s.place_object(id, at, Quat::IDENTITY, 0), Err(ObjectRefused::Duplicate));
    assert_eq!(s.set_object_state(id, 3), Err(ObjectRefused::BadState));
    assert_eq!(s.set_object_state(EntityId::object(9, WALL), 0), Err(ObjectRefused::Missing));
    assert_eq!(s.move_object(id, Vec3::new(0.0, f32::INFINITY, 0.0), Quat::IDENTITY), Err(ObjectRefused::BadPose));
    assert_eq!(s.object_count(), 1);
}

#[test]
fn placed_poses_are_on_the_grids_and_snapshots_keep_objects_deterministic() {
    let mut s = sim(world());
    let id = EntityId::object(1, BLOCK);
    s.place_object(id, Vec3::new(0.123_456, 3.0, 4.987_654), Quat::from_rotation_y(0.7), 0).unwrap();
    let o = s.object(id).unwrap();
    assert_eq!(o.position_m, pwn_sim::quantize::snap_position(o.position_m));
    let snap = s.snapshot();
    let run = |s: &mut pwn_sim::Sim| {
        for _ in 0..60 {
            s.step(&Default::default());
        }
        s.state_hash()
    };
    let first = run(&mut s);
    s.restore(&snap);
    assert_eq!(run(&mut s), first);
    assert!(s.object(id).unwrap().position_m.y < 1.0);
}
