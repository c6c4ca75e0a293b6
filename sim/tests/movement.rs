//! Character movement: walls stop characters, speed is capped, jumps reach the expected height,
//! slopes up to the configured limit are walkable (and steeper ones are not), crates get pushed,
//! characters do not pass through each other.

mod common;

use common::*;
use pwn_sim::{BoxDesc, Buttons, CrateDesc, EntityId};

#[test]
fn cannot_walk_through_a_wall() {
    // A wall whose near face is at z = 5.
    let mut s = sim(world_with(vec![block([0.0, 2.0, 5.5], [5.0, 2.0, 0.5])]));
    let me = place(&mut s, 1, 0.0, 0.0);
    let r = s.config().character.radius_m;
    let path = run(&mut s, me, 1, 150, |_| input(0, 0.0, 1.0, Buttons::RUN));
    let max_z = path.iter().map(|p| p.z).fold(f32::MIN, f32::max);
    assert!(max_z <= 5.0 - r + 0.01, "went through the wall: z = {max_z}");
    // It did walk up to the wall rather than never moving.
    assert!(max_z > 5.0 - r - 0.1, "stopped short: z = {max_z}");
}

#[test]
fn horizontal_speed_never_exceeds_the_run_speed() {
    let mut s = sim(world_with(vec![]));
    let me = place(&mut s, 1, 0.0, 0.0);
    let cfg = s.config().clone();
    let dt = cfg.dt_s();
    let mut last = s.character(me).unwrap().position_m;
    let mut fastest: f32 = 0.0;
    for t in 0..120u32 {
        // Oversized and diagonal inputs must not add up to more than the run speed.
        let mut i = input(t + 1, 50.0, 1e9, Buttons::RUN | Buttons::JUMP);
        i.yaw_rad = t as f32 * 0.3;
        step_one(&mut s, me, i);
        let now = s.character(me).unwrap().position_m;
        let d = glam::Vec2::new(now.x - last.x, now.z - last.z).length();
        fastest = fastest.max(d / dt);
        last = now;
    }
    assert!(fastest <= cfg.character.run_speed_mps + 0.05, "speed {fastest} m/s");
    assert!(fastest > cfg.character.run_speed_mps * 0.9, "never ran: {fastest} m/s");
}

#[test]
fn jump_height_is_within_bounds_and_the_character_lands() {
    let mut s = sim(world_with(vec![]));
    let me = place(&mut s, 1, 0.0, 0.0);
    // Settle on the ground first.
    run(&mut s, me, 1, 10, |_| input(0, 0.0, 0.0, 0));
    let ground_y = s.character(me).unwrap().position_m.y;
    assert!(s.character(me).unwrap().grounded);
    let path = run(&mut s, me, 11, 60, |t| input(0, 0.0, 0.0, if t == 0 { Buttons::JUMP } else { 0 }));
    let apex = path.iter().map(|p| p.y).fold(f32::MIN, f32::max) - ground_y;
    let cfg = s.config();
    let ideal = cfg.character.jump_speed_mps.powi(2) / (2.0 * cfg.gravity_mps2);
    assert!(apex > ideal * 0.85 && apex < ideal * 1.1, "apex {apex} m, ideal {ideal} m");
    let end = s.character(me).unwrap();
    assert!(end.grounded && (end.position_m.y - ground_y).abs() < 0.01, "did not land: {end:?}");
}

fn ramp(angle_deg: f32) -> BoxDesc {
    // A long plank tilted about X so that walking +Z goes uphill, its low end at z = 2 on the ground.
    let half_len = 10.0;
    let a = angle_deg.to_radians();
    BoxDesc {
        center_m: [0.0, half_len * a.sin() - 0.1, 2.0 + half_len * a.cos()],
        half_extents_m: [3.0, 0.1, half_len],
        rotation_deg: [-angle_deg, 0.0, 0.0],
    }
}

#[test]
fn walks_up_a_slope_below_the_limit_and_not_up_one_above() {
    let mut gentle = sim(world_with(vec![ramp(30.0)]));
    let me = place(&mut gentle, 1, 0.0, 0.0);
    let start_y = gentle.character(me).unwrap().position_m.y;
    let path = run(&mut gentle, me, 1, 90, |_| input(0, 0.0, 1.0, 0));
    let climbed = path.last().unwrap().y - start_y;
    assert!(climbed > 3.0, "climbed only {climbed} m up a 30 degree slope");

    let mut steep = sim(world_with(vec![ramp(60.0)]));
    let me = place(&mut steep, 1, 0.0, 0.0);
    let start_y = steep.character(me).unwrap().position_m.y;
    let path = run(&mut steep, me, 1, 90, |_| input(0, 0.0, 1.0, 0));
    let climbed = path.iter().map(|p| p.y).fold(f32::MIN, f32::max) - start_y;
    assert!(climbed < 0.6, "climbed {climbed} m up a 60 degree slope");
}

#[test]
fn stands_still_on_a_walkable_slope() {
    let mut s = sim(world_with(vec![ramp(30.0)]));
    let me = place(&mut s, 1, 0.0, 0.0);
    run(&mut s, me, 1, 40, |_| input(0, 0.0, 1.0, 0));
    let on_slope = s.character(me).unwrap().position_m;
    assert!(on_slope.y > 1.5);
    let path = run(&mut s, me, 41, 60, |_| input(0, 0.0, 0.0, 0));
    let drift = (*path.last().unwrap() - on_slope).length();
    assert!(drift < 0.05, "slid {drift} m down a 30 degree slope");
}

#[test]
fn pushes_a_crate() {
    let mut desc = world_with(vec![]);
    desc.crates.push(CrateDesc { center_m: [0.0, 0.5, 3.0], half_extents_m: [0.5; 3], density_kgpm3: 50.0 });
    let mut s = sim(desc);
    let me = place(&mut s, 1, 0.0, 0.0);
    let before = s.crates().next().unwrap().1;
    run(&mut s, me, 1, 90, |_| input(0, 0.0, 1.0, 0));
    let after = s.crates().next().unwrap().1;
    assert!(after.z - before.z > 1.0, "crate moved {} m", after.z - before.z);
}

#[test]
fn characters_do_not_pass_through_each_other() {
    let mut s = sim(world_with(vec![]));
    let a = place(&mut s, 1, 0.0, 0.0);
    let b = place(&mut s, 2, 0.0, 6.0);
    let r = s.config().character.radius_m;
    let mut closest = f32::MAX;
    for t in 0..120u32 {
        let mut m = std::collections::BTreeMap::new();
        m.insert(a, input(t + 1, 0.0, 1.0, Buttons::RUN));
        let mut toward = input(t + 1, 0.0, 1.0, Buttons::RUN);
        toward.yaw_rad = std::f32::consts::PI;
        m.insert(b, toward);
        s.step(&m);
        let pa = s.character(a).unwrap().position_m;
        let pb = s.character(b).unwrap().position_m;
        closest = closest.min(glam::Vec2::new(pa.x - pb.x, pa.z - pb.z).length());
    }
    assert!(closest >= 2.0 * r - 0.1, "capsules overlapped: {closest} m apart");
    assert!(s.character(EntityId(1)).unwrap().position_m.z > 1.0, "never moved");
}

#[test]
fn climbs_a_step_below_the_step_height_but_not_a_higher_one() {
    let step = pwn_sim::SimConfig::default().character.step_height_m;
    for (height, climbs) in [(step * 0.7, true), (step * 2.0, false)] {
        // A wide block whose top is `height` above the ground, starting at z = 2.
        let mut s = sim(world_with(vec![block([0.0, height / 2.0, 7.0], [5.0, height / 2.0, 5.0])]));
        let me = place(&mut s, 1, 0.0, 0.0);
        run(&mut s, me, 1, 5, |_| input(0, 0.0, 0.0, 0));
        let start_y = s.character(me).unwrap().position_m.y;
        let path = run(&mut s, me, 6, 60, |_| input(0, 0.0, 1.0, 0));
        let end = *path.last().unwrap();
        if climbs {
            assert!(end.z > 4.0 && end.y > start_y + height * 0.9, "did not climb a {height} m step: {end}");
        } else {
            assert!(end.z < 2.0, "walked into a {height} m block: {end}");
        }
    }
}

#[test]
fn walks_off_a_ledge_falls_and_lands() {
    // A platform 2 m high from z = -5 to z = 2.
    let mut s = sim(world_with(vec![block([0.0, 1.0, -1.5], [5.0, 1.0, 3.5])]));
    let c = s.config().character.clone();
    let state = pwn_sim::CharacterState::spawned_at(
        glam::Vec3::new(0.0, 2.0 + c.half_height_m + c.radius_m + 0.05, 0.0),
        s.config(),
    );
    s.insert_character(EntityId(1), state).unwrap();
    let me = EntityId(1);
    let path = run(&mut s, me, 1, 90, |_| input(0, 0.0, 1.0, 0));
    let top = path[0].y;
    let end = s.character(me).unwrap();
    assert!(top > 2.5, "did not start on the platform: {top}");
    assert!(end.grounded && end.position_m.y < 1.0 && end.position_m.z > 4.0, "did not fall and land: {end:?}");
}

#[test]
fn a_crowd_converging_on_one_point_stays_apart_and_in_bounds() {
    let mut s = sim(world_with(vec![block([0.0, 1.0, 0.0], [1.0, 1.0, 1.0])]));
    let mut ids = Vec::new();
    for i in 0..40u64 {
        let angle = i as f32 * 0.157;
        let radius = 8.0 + (i % 4) as f32 * 1.5;
        ids.push(place(&mut s, i + 1, angle.cos() * radius, angle.sin() * radius));
    }
    let r = s.config().character.radius_m;
    let speed_limit = s.config().character.run_speed_mps + 0.05;
    for t in 0..200u32 {
        let mut m = std::collections::BTreeMap::new();
        for id in &ids {
            let p = s.character(*id).unwrap().position_m;
            let mut i = input(t + 1, 0.0, 1.0, Buttons::RUN);
            i.yaw_rad = (-p.x).atan2(-p.z);
            m.insert(*id, i);
        }
        s.step(&m);
        for (id, c) in s.characters() {
            let h = glam::Vec2::new(c.velocity_mps.x, c.velocity_mps.z).length();
            assert!(h <= speed_limit, "{id} moved at {h} m/s at tick {t}");
            // Nobody's capsule gets inside the central block (its faces are at +-1 m).
            let dx = (c.position_m.x.abs() - 1.0).max(0.0);
            let dz = (c.position_m.z.abs() - 1.0).max(0.0);
            let clearance = (dx * dx + dz * dz).sqrt();
            assert!(clearance > r - 0.05, "{id} entered the block at tick {t}: {:?}", c.position_m);
        }
    }
    // After settling, capsules may touch but not sink into each other.
    let all: Vec<glam::Vec3> = s.characters().map(|(_, c)| c.position_m).collect();
    let mut worst = f32::MAX;
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            worst = worst.min(glam::Vec2::new(a.x - b.x, a.z - b.z).length());
        }
    }
    assert!(worst > 2.0 * r - 0.15, "two capsules sank into each other: {worst} m apart");
}
