//! Hostile inputs (NaN, infinities, huge vectors, replayed and absurd sequence numbers) are
//! sanitized or dropped and leave the world valid.

mod common;

use common::*;
use proptest::prelude::*;
use pwn_sim::{Buttons, CharacterState, EntityId, InputSeq, PlayerInput, Sim, SimConfig, SimError, WorldDesc};

fn assert_valid(s: &Sim) {
    let cfg = s.config();
    for (id, c) in s.characters() {
        assert!(c.position_m.is_finite() && c.velocity_mps.is_finite(), "{id}: {c:?}");
        assert!(s.desc().contains_xz(c.position_m.x, c.position_m.z), "{id} left the world: {c:?}");
        let h = glam::Vec2::new(c.velocity_mps.x, c.velocity_mps.z).length();
        assert!(h <= cfg.character.run_speed_mps + 0.05, "{id} too fast: {c:?}");
        assert!(c.position_m.y > -1.0, "{id} fell through the ground: {c:?}");
        assert!(c.health <= cfg.character.max_health);
    }
    for p in s.projectiles() {
        assert!(p.position_m.is_finite() && p.velocity_mps.is_finite());
    }
}

fn arb_f32() -> impl Strategy<Value = f32> {
    prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY), -2.0f32..2.0]
}

fn arb_input() -> impl Strategy<Value = PlayerInput> {
    (any::<u32>(), arb_f32(), arb_f32(), arb_f32(), arb_f32(), any::<u8>()).prop_map(|(seq, mx, mz, yaw, pitch, b)| {
        PlayerInput {
            seq: InputSeq(seq % 600),
            move_x: mx,
            move_z: mz,
            yaw_rad: yaw,
            pitch_rad: pitch,
            buttons: Buttons(b),
            view_tick: 0,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_input_streams_leave_the_world_valid(stream in proptest::collection::vec((arb_input(), arb_input()), 60)) {
        let mut s = Sim::new(WorldDesc::arena(), SimConfig::default(), 3).unwrap();
        s.spawn_character(EntityId(1)).unwrap();
        s.spawn_character(EntityId(2)).unwrap();
        for (a, b) in &stream {
            let mut m = std::collections::BTreeMap::new();
            m.insert(EntityId(1), *a);
            m.insert(EntityId(2), *b);
            s.step(&m);
            assert_valid(&s);
        }
    }
}

#[test]
fn replayed_old_and_far_ahead_sequences_are_dropped_and_counted() {
    let mut s = sim(world_with(vec![]));
    let me = place(&mut s, 1, 0.0, 0.0);
    assert_eq!(step_one(&mut s, me, input(10, 0.0, 1.0, 0)).inputs_applied, 1);
    let z = s.character(me).unwrap().position_m.z;
    // A duplicate and an older input are stale; the character repeats its last input instead.
    assert_eq!(step_one(&mut s, me, input(10, 0.0, -1.0, 0)).inputs_stale, 1);
    assert_eq!(step_one(&mut s, me, input(3, 0.0, -1.0, 0)).inputs_stale, 1);
    assert!(s.character(me).unwrap().position_m.z > z, "a stale input moved the character");
    let report = step_one(&mut s, me, input(u32::MAX, 0.0, -1.0, Buttons::FIRE));
    assert_eq!(report.inputs_too_far_ahead, 1);
    assert_eq!(s.character(me).unwrap().last_seq, Some(InputSeq(10)), "a far-ahead input was applied");
    assert_eq!(s.projectiles().count(), 0, "a dropped input fired");
    // Honest inputs keep working afterwards.
    assert_eq!(step_one(&mut s, me, input(11, 0.0, 1.0, 0)).inputs_applied, 1);
    let unknown = step_one(&mut s, EntityId(99), input(1, 0.0, 1.0, 0));
    assert_eq!(unknown.inputs_unknown, 1);
    assert_valid(&s);
}

#[test]
fn bad_character_states_and_ids_are_refused() {
    let mut s = sim(world_with(vec![]));
    let cfg = s.config().clone();
    let nan = CharacterState::spawned_at(glam::Vec3::NAN, &cfg);
    assert!(matches!(s.insert_character(EntityId(1), nan), Err(SimError::BadState(..))));
    let far = CharacterState::spawned_at(glam::Vec3::new(1e6, 0.0, 0.0), &cfg);
    assert!(matches!(s.insert_character(EntityId(1), far), Err(SimError::BadState(..))));
    let ok = CharacterState::spawned_at(glam::Vec3::new(0.0, 1.0, 0.0), &cfg);
    assert!(matches!(s.insert_character(EntityId::world_entity(0), ok.clone()), Err(SimError::NotGameplayId(_))));
    s.insert_character(EntityId(1), ok.clone()).unwrap();
    assert!(matches!(s.insert_character(EntityId(1), ok), Err(SimError::Duplicate(_))));
}
