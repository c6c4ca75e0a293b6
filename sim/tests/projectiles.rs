//! Projectiles: a shot hits a target in line, misses one behind a wall, kills and respawns,
//! pushes crates, and carries the same deterministic id on every run.

mod common;

use common::*;
use pwn_sim::{Buttons, CrateDesc, DespawnReason, EntityId, EntityKind, HitTarget, InputSeq, SimEvent};

fn fire_once(s: &mut pwn_sim::Sim, shooter: EntityId, ticks: u32) -> Vec<SimEvent> {
    let mut events = Vec::new();
    for t in 0..ticks {
        let buttons = if t == 0 { Buttons::FIRE } else { 0 };
        events.extend(step_one(s, shooter, input(t + 1, 0.0, 0.0, buttons)).events);
    }
    events
}

fn hits(events: &[SimEvent]) -> Vec<HitTarget> {
    events.iter().filter_map(|e| if let SimEvent::Hit { target, .. } = e { Some(*target) } else { None }).collect()
}

#[test]
fn a_shot_hits_a_target_in_line() {
    let mut s = sim(world_with(vec![]));
    let shooter = place(&mut s, 1, 0.0, 0.0);
    let target = place(&mut s, 2, 0.0, 12.0);
    let events = fire_once(&mut s, shooter, 20);
    assert_eq!(hits(&events), vec![HitTarget::Character(target)]);
    let damage = s.config().projectile.damage;
    assert_eq!(s.character(target).unwrap().health, s.config().character.max_health - damage);
    assert!(events.contains(&SimEvent::Despawned {
        entity: EntityId::projectile(shooter, InputSeq(1)),
        kind: EntityKind::Projectile,
        reason: DespawnReason::Hit
    }));
}

#[test]
fn a_shot_misses_a_target_behind_a_wall() {
    let mut s = sim(world_with(vec![block([0.0, 2.0, 6.0], [4.0, 2.0, 0.1])]));
    let shooter = place(&mut s, 1, 0.0, 0.0);
    let target = place(&mut s, 2, 0.0, 12.0);
    let events = fire_once(&mut s, shooter, 20);
    assert_eq!(hits(&events), vec![HitTarget::World]);
    assert_eq!(s.character(target).unwrap().health, s.config().character.max_health);
}

#[test]
fn a_fast_shot_does_not_tunnel_through_a_thin_wall() {
    // 80 m/s at 30 Hz is 2.7 m per tick against a 2 cm wall: only a swept test catches it.
    let mut s = sim(world_with(vec![block([0.0, 2.0, 7.3], [4.0, 2.0, 0.01])]));
    let shooter = place(&mut s, 1, 0.0, 0.0);
    place(&mut s, 2, 0.0, 12.0);
    assert_eq!(hits(&fire_once(&mut s, shooter, 20)), vec![HitTarget::World]);
}

#[test]
fn projectile_ids_match_between_runs_and_are_derived_from_owner_and_sequence() {
    let spawned = || {
        let mut s = sim(world_with(vec![]));
        let shooter = place(&mut s, 1, 0.0, 0.0);
        let mut ids = Vec::new();
        for t in 0..40u32 {
            let e = step_one(&mut s, shooter, input(t + 100, 0.0, 0.0, Buttons::FIRE)).events;
            ids.extend(e.into_iter().filter_map(|e| match e {
                SimEvent::Spawned { entity, kind: EntityKind::Projectile } => Some(entity),
                _ => None,
            }));
        }
        ids
    };
    let a = spawned();
    assert!(a.len() >= 5, "fire interval let only {} shots out", a.len());
    assert_eq!(a, spawned());
    assert_eq!(a[0], EntityId::projectile(EntityId(1), InputSeq(100)));
}

#[test]
fn enough_hits_kill_and_the_victim_respawns_with_full_health() {
    let mut s = sim(world_with(vec![]));
    let shooter = place(&mut s, 1, 0.0, 0.0);
    let victim = place(&mut s, 2, 0.0, 10.0);
    let mut events = Vec::new();
    for t in 0..200u32 {
        events.extend(step_one(&mut s, shooter, input(t + 1, 0.0, 0.0, Buttons::FIRE)).events);
        if events.iter().any(|e| matches!(e, SimEvent::Death { .. })) {
            break;
        }
    }
    assert!(events.contains(&SimEvent::Death { entity: victim, killer: Some(shooter) }));
    assert!(!s.character(victim).unwrap().alive());
    let respawn = u32::from(s.config().character.respawn_ticks);
    let mut respawned = false;
    for t in 0..respawn + 2 {
        let e = step_one(&mut s, shooter, input(1000 + t, 0.0, 0.0, 0)).events;
        respawned |= e.contains(&SimEvent::Spawned { entity: victim, kind: EntityKind::Character });
    }
    assert!(respawned);
    assert_eq!(s.character(victim).unwrap().health, s.config().character.max_health);
}

#[test]
fn shooting_a_crate_pushes_it() {
    let mut desc = world_with(vec![]);
    desc.crates.push(CrateDesc { center_m: [0.0, 1.0, 8.0], half_extents_m: [0.5, 1.0, 0.5], density_kgpm3: 10.0 });
    let mut s = sim(desc);
    let shooter = place(&mut s, 1, 0.0, 0.0);
    // Let the crate settle, then shoot.
    run(&mut s, shooter, 1, 20, |_| input(0, 0.0, 0.0, 0));
    let before = s.crates().next().unwrap().1;
    let events = fire_once_from(&mut s, shooter, 21);
    assert!(matches!(hits(&events)[..], [HitTarget::Crate(_)]), "{events:?}");
    let after = s.crates().next().unwrap().1;
    assert!(after.z - before.z > 0.1, "crate moved {} m", after.z - before.z);
}

fn fire_once_from(s: &mut pwn_sim::Sim, shooter: EntityId, first_seq: u32) -> Vec<SimEvent> {
    let mut events = Vec::new();
    for t in 0..30 {
        let buttons = if t == 0 { Buttons::FIRE } else { 0 };
        events.extend(step_one(s, shooter, input(first_seq + t, 0.0, 0.0, buttons)).events);
    }
    events
}
