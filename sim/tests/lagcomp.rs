//! Lag compensation (`pwn_sim::lagcomp`): the rewind a shot keeps never exceeds its bound. Hits
//! with and without the rewind are tested with scripted duels in
//! `load-tests/tests/lagcomp.rs`.

mod common;

use common::*;
use pwn_sim::{Buttons, EntityId, InputSeq, PlayerInput};
use std::collections::BTreeMap;

const SHOOTER: EntityId = EntityId(1);

#[test]
fn the_rewind_never_exceeds_its_bound_and_a_view_from_the_future_is_no_rewind() {
    let mut sim = sim(world_with(vec![]));
    place(&mut sim, SHOOTER.0, 0.0, 0.0);
    for _ in 0..100 {
        sim.step(&BTreeMap::new());
    }
    // (sequence, view tick as a function of the firing tick, the rewind expected)
    type Case = (u32, fn(u64) -> u64, u64);
    let cases: [Case; 4] = [
        (1, |_| 1, pwn_sim::lagcomp::REWIND_TICKS_MAX),
        (20, |now| now + 1_000, 0),
        (40, |_| 0, 0),
        (60, |now| now - 6, 6),
    ];
    for (seq, view, expected) in cases {
        let view_tick = view(sim.tick().0 + 1);
        let fire =
            PlayerInput { seq: InputSeq(seq), buttons: Buttons(Buttons::FIRE), view_tick, ..PlayerInput::default() };
        step_one(&mut sim, SHOOTER, fire);
        let p = sim.projectile(EntityId::projectile(SHOOTER, InputSeq(seq))).expect("fired");
        assert_eq!(u64::from(p.rewind_ticks), expected, "view tick {view_tick} at tick {}", sim.tick().0);
        for _ in 1..19 {
            step_one(&mut sim, SHOOTER, PlayerInput { seq: InputSeq(seq), ..PlayerInput::default() });
        }
    }
}

/// A rewound shot whose path crosses, first, where a character that has since died or left
/// was, and then where a live one was, hits the live one: a character that is gone shields
/// nobody (as its disabled or removed collider shields nobody without the rewind).
#[test]
fn a_rewound_shot_is_not_stopped_by_a_character_that_has_since_died_or_left() {
    for gone_by_leaving in [false, true] {
        let mut sim = sim(world_with(vec![]));
        place(&mut sim, SHOOTER.0, 0.0, 0.0);
        let nearer = place(&mut sim, 2, 0.0, 1.2);
        let farther = place(&mut sim, 3, 0.0, 2.2);
        for _ in 0..10 {
            sim.step(&BTreeMap::new());
        }
        if gone_by_leaving {
            sim.remove_character(nearer).expect("there");
        } else {
            let mut events = Vec::new();
            sim.apply_remote_hit(nearer, u16::MAX, EntityId(99), &mut events);
            assert!(!sim.character(nearer).unwrap().alive());
        }
        let view_tick = sim.tick().0 + 1 - 5;
        let fire =
            PlayerInput { seq: InputSeq(1), buttons: Buttons(Buttons::FIRE), view_tick, ..PlayerInput::default() };
        let report = step_one(&mut sim, SHOOTER, fire);
        let hit = report.events.iter().find_map(|e| match e {
            pwn_sim::SimEvent::Hit { target, .. } => Some(*target),
            _ => None,
        });
        assert_eq!(hit, Some(pwn_sim::HitTarget::Character(farther)), "left: {gone_by_leaving}");
    }
}
