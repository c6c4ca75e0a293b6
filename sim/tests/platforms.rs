//! Moving platforms (`pwn_sim::platform`): poses are a function of the tick alone, riders are
//! carried and predicted exactly, characters in the way are pushed, a jump leaves the platform,
//! and shots hit platforms.

mod common;

use common::*;
use glam::Vec3;
use pwn_sim::{Buttons, EntityId, HitTarget, PlatformDesc, SimEvent, WorldDesc};

/// A lift at (10, 10): a 4 m square slab rising from 0.25 m to 6.25 m at 2 m/s, pausing 1 s.
fn lift() -> PlatformDesc {
    PlatformDesc {
        half_extents_m: [2.0, 0.25, 2.0],
        path_m: vec![[10.0, 0.25, 10.0], [10.0, 6.25, 10.0]],
        speed_mps: 2.0,
        pause_s: 1.0,
        closed: false,
    }
}

/// A ferry at ground level moving along +X from x = -10 to x = 10 at 3 m/s.
fn ferry() -> PlatformDesc {
    PlatformDesc {
        half_extents_m: [1.5, 0.5, 1.5],
        path_m: vec![[-10.0, 0.5, 0.0], [10.0, 0.5, 0.0]],
        speed_mps: 3.0,
        pause_s: 0.0,
        closed: false,
    }
}

fn world(platforms: Vec<PlatformDesc>) -> WorldDesc {
    WorldDesc { platforms, ..world_with(vec![]) }
}

/// Puts a character standing on top of a platform whose top is at `top_y`.
fn stand_on(s: &mut pwn_sim::Sim, id: u64, x: f32, top_y: f32, z: f32) -> EntityId {
    let c = s.config().character.clone();
    let at = Vec3::new(x, top_y + c.half_height_m + c.radius_m + 0.04, z);
    s.insert_character(EntityId(id), pwn_sim::CharacterState::spawned_at(at, s.config())).unwrap();
    EntityId(id)
}

#[test]
fn platform_poses_depend_on_the_tick_alone() {
    // `[platform-1]`: a world stepped to tick t and another that joined the clock at t agree.
    let mut a = sim(world(vec![lift(), ferry()]));
    for _ in 0..137 {
        a.step(&Default::default());
    }
    let mut b = sim(world(vec![lift(), ferry()]));
    b.join_clock(a.tick());
    assert_eq!(a.platform_positions(), b.platform_positions());
    let path = &a.platforms()[0];
    assert_eq!(a.platform_positions()[0], path.position_at(137));
}

#[test]
fn a_rider_is_carried_and_predicted_exactly_for_thirty_seconds() {
    // `[platform-2]`: the server steps the world; the client predicts only its character with
    // the platform at the same tick. 900 ticks of idle input: every tick bit-identical.
    let mut server = sim(world(vec![lift()]));
    let me = stand_on(&mut server, 1, 10.5, 0.5, 9.5);
    let mut client = sim(world(vec![lift()]));
    client.insert_character(me, server.character(me).unwrap().clone()).unwrap();
    let (mut lowest, mut highest) = (f32::MAX, f32::MIN);
    let (mut mismatches, mut airborne) = (0, 0);
    for t in 0..900u32 {
        let i = input(t + 1, 0.0, 0.0, 0);
        step_one(&mut server, me, i);
        client.predict_step_at(me, i, server.tick().0);
        let (s, c) = (server.character(me).unwrap(), client.character(me).unwrap());
        if s != c {
            mismatches += 1;
        }
        // It was put a few centimetres above the slab and lands on the first tick.
        if t > 0 && !s.grounded {
            airborne += 1;
        }
        lowest = lowest.min(s.position_m.y);
        highest = highest.max(s.position_m.y);
    }
    assert_eq!(mismatches, 0, "server and prediction differ on some ticks");
    // It rode the whole 6 m up and back down, standing the whole way.
    assert!(highest - lowest > 5.9, "rode from {lowest} to {highest}");
    // Carried, not lifted and dropped: standing on every tick, up and down.
    assert_eq!(airborne, 0, "ticks off the platform");
}

#[test]
fn a_character_in_the_way_is_pushed() {
    // `[platform-3]`: someone standing at x = 0 in the ferry's lane is shoved along +X and
    // never ends up inside it.
    let mut s = sim(world(vec![ferry()]));
    let me = place(&mut s, 1, 0.0, 0.0);
    let r = s.config().character.radius_m;
    let mut pushed = false;
    for t in 0..150u32 {
        step_one(&mut s, me, input(t + 1, 0.0, 0.0, 0));
        let p = s.character(me).unwrap().position_m;
        let f = s.platform_positions()[0];
        if p.x > 0.5 {
            pushed = true;
        }
        // Never deep inside: within the half width plus radius, less a few centimetres.
        let inside = (p.x - f.x).abs() < 1.5 + r - 0.2 && (p.z - f.z).abs() < 1.5 + r - 0.2;
        assert!(!inside || p.y > 1.0, "tick {t}: character at {p} inside the ferry at {f}");
    }
    assert!(pushed, "the ferry never moved the character");
}

#[test]
fn a_jump_leaves_the_platform_behind() {
    // `[platform-4]`: once airborne the character keeps its own motion only.
    let mut s = sim(world(vec![ferry()]));
    let f0 = s.platform_positions()[0];
    let me = stand_on(&mut s, 1, f0.x, 1.0, 0.0);
    for t in 0..20u32 {
        step_one(&mut s, me, input(t + 1, 0.0, 0.0, 0));
    }
    let before = s.character(me).unwrap().position_m;
    assert!(before.x > f0.x + 1.0, "was not carried: {before} from {f0}");
    step_one(&mut s, me, input(21, 0.0, 0.0, Buttons::JUMP));
    let after_jump = s.character(me).unwrap().position_m.x;
    for t in 0..5u32 {
        step_one(&mut s, me, input(22 + t, 0.0, 0.0, 0));
        assert!(!s.character(me).unwrap().grounded);
        assert_eq!(s.character(me).unwrap().position_m.x, after_jump, "airborne but still carried");
    }
}

#[test]
fn a_shot_hits_a_platform() {
    let mut lift_in_front = lift();
    lift_in_front.path_m = vec![[0.0, 1.5, 6.0], [0.0, 1.5, 6.5]];
    let mut s = sim(world(vec![lift_in_front]));
    let shooter = place(&mut s, 1, 0.0, 0.0);
    let mut events = Vec::new();
    for t in 0..20u32 {
        events.extend(step_one(&mut s, shooter, input(t + 1, 0.0, 0.0, if t == 0 { Buttons::FIRE } else { 0 })).events);
    }
    let hit = events.iter().find_map(|e| match e {
        SimEvent::Hit { target, point_m, .. } => Some((*target, *point_m)),
        _ => None,
    });
    let (target, point) = hit.expect("the shot hit something");
    assert_eq!(target, HitTarget::World);
    assert!(point[2] > 3.5 && point[2] < 4.6, "hit at {point:?}");
}

#[test]
fn snapshots_restore_platforms_and_keep_the_world_deterministic() {
    let mut a = sim(world(vec![lift(), ferry()]));
    let me = stand_on(&mut a, 1, 10.0, 0.5, 10.0);
    for t in 0..40u32 {
        step_one(&mut a, me, input(t + 1, 0.0, 0.0, 0));
    }
    let snap = a.snapshot();
    let run = |s: &mut pwn_sim::Sim| {
        for t in 40..100u32 {
            step_one(s, me, input(t + 1, 0.3, 0.0, 0));
        }
        s.state_hash()
    };
    let first = run(&mut a);
    a.restore(&snap);
    assert_eq!(run(&mut a), first);
}
