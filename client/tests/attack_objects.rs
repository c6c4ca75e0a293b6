//! Attacks on the client's side of world objects and `[predict-4]`: a hostile or broken server
//! (snapshots with object ids of unknown kinds, bad states and poses, absurd ticks) never
//! panics the client.

use pwn_client::mirror::Mirror;
use pwn_client::predict::Predictor;
use pwn_proto::delta::{EntityState, View};
use pwn_sim::object::Editors;
use pwn_sim::quantize::{quantize_position, quantize_rotation};
use pwn_sim::{CharacterState, EntityId, InputSeq, ObjectKind, PlatformDesc, PlayerInput, Sim, SimConfig, WorldDesc};

fn world() -> WorldDesc {
    let mut w = WorldDesc::flat(400.0);
    w.object_kinds = vec![
        ObjectKind {
            name: "wall".into(),
            half_extents_m: [2.0, 1.5, 0.2],
            dynamic: false,
            density_kgpm3: 100.0,
            states: 1,
            passable_states: vec![],
            editors: Editors::Anyone,
        },
        ObjectKind {
            name: "block".into(),
            half_extents_m: [0.5, 0.5, 0.5],
            dynamic: true,
            density_kgpm3: 100.0,
            states: 2,
            passable_states: vec![1],
            editors: Editors::Anyone,
        },
    ];
    w.platforms = vec![PlatformDesc {
        half_extents_m: [2.0, 0.25, 2.0],
        path_m: vec![[10.0, 0.25, 10.0], [10.0, 6.25, 10.0]],
        speed_mps: 2.0,
        pause_s: 1.0,
        closed: false,
    }];
    w
}

fn predictor() -> (Predictor, EntityId) {
    let cfg = SimConfig::default();
    let sim = Sim::new(world(), cfg.clone(), 1).unwrap();
    let me = EntityId(1);
    let start = CharacterState::spawned_at(glam::Vec3::new(0.0, 0.95, 0.0), &cfg);
    (Predictor::new(sim, me, start).unwrap(), me)
}

fn state(id: u64, at: glam::Vec3, health: u16) -> EntityState {
    EntityState {
        id,
        position: quantize_position(at),
        velocity: [0; 3],
        yaw: 0,
        rotation: quantize_rotation(glam::Quat::IDENTITY),
        health,
    }
}

fn input(seq: u32) -> PlayerInput {
    PlayerInput {
        seq: InputSeq(seq),
        move_x: 0.0,
        move_z: 1.0,
        yaw_rad: 0.0,
        pitch_rad: 0.0,
        buttons: pwn_sim::Buttons(0),
        view_tick: 0,
    }
}

#[test]
fn hostile_objects_in_snapshots_never_panic_the_mirror() {
    let (mut p, me) = predictor();
    let mut m = Mirror::default();
    let me_state = state(me.0, glam::Vec3::new(0.0, 0.95, 0.0), 100);
    let base = pwn_sim::ids::OBJECT_ID_BASE;
    let hostile = vec![
        me_state,
        // Known kind, fine.
        state(EntityId::object(1, 0).0, glam::Vec3::new(5.0, 1.5, 5.0), 0),
        // Known kind, a state it does not have.
        state(EntityId::object(2, 0).0, glam::Vec3::new(-5.0, 1.5, 5.0), u16::MAX),
        // Unknown kinds.
        state(EntityId::object(3, 2).0, glam::Vec3::new(0.0, 1.5, -5.0), 0),
        state(EntityId::object(4, u16::MAX).0, glam::Vec3::new(0.0, 1.5, -5.0), 0),
        // The first and the last ids of the object range.
        state(base, glam::Vec3::new(0.0, 1.5, -5.0), 0),
        state(pwn_sim::ids::PROJECTILE_ID_BASE - 1, glam::Vec3::new(0.0, 1.5, -5.0), 0),
        // Outside the world, at the grid's extremes.
        EntityState {
            position: [i32::MAX, i32::MIN, i32::MAX],
            ..state(EntityId::object(5, 0).0, glam::Vec3::ZERO, 0)
        },
        // A dynamic object in a passable state, garbage rotation bits.
        EntityState { rotation: u32::MAX, ..state(EntityId::object(6, 1).0, glam::Vec3::new(3.0, 0.5, 3.0), 1) },
    ];
    m.follow(&mut p, &View::from_states(hostile.clone()), me, 0.1);
    // The same ids again with changed states and poses, then all gone.
    let changed: Vec<EntityState> = hostile
        .iter()
        .map(|e| EntityState { health: e.health.wrapping_add(1), position: [e.position[0] ^ 0x5555, 0, 0], ..*e })
        .collect();
    m.follow(&mut p, &View::from_states(changed), me, 0.1);
    m.follow(&mut p, &View::from_states(vec![me_state]), me, 0.1);
    for seq in 1..30 {
        p.input(&input(seq));
    }
}

/// A snapshot whose tick is absurd (a broken or hostile server) must not panic the predictor:
/// `[predict-4]` computes the tick of every later input from it.
#[test]
fn predict_4_an_absurd_snapshot_tick_does_not_panic_the_client() {
    for tick in [0u64, 1, i64::MAX as u64, (i64::MAX as u64) + 1, u64::MAX] {
        let (mut p, me) = predictor();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for seq in 1..5 {
                p.input(&input(seq));
            }
            let server = state(me.0, glam::Vec3::new(0.0, 0.95, 0.0), 100);
            p.reconcile(tick, 1, &server);
            for seq in 5..10 {
                p.input(&input(seq));
            }
            let _ = p.tick_of_input(u32::MAX);
        }));
        assert!(outcome.is_ok(), "a snapshot of tick {tick} panicked the client");
    }
}

/// `[game-16]`: request numbers keep increasing whatever the wall clock says (a clock set far
/// ahead once, then back), and numbering never panics.
#[test]
fn game_16_edit_request_numbers_increase_whatever_the_clock_says() {
    let mut g = pwn_client::GameClient::new(world(), SimConfig::default(), EntityId(1));
    let op = pwn_proto::EditOp::Remove { object: EntityId::object(1, 0).0 };
    let mut last = 0;
    for clock in [0, 5, 3, 1_700_000_000_000_000, 1, u64::MAX - 1] {
        let r = g.edit(op, clock).request;
        assert!(r > last || last == 0, "{r} after {last}");
        last = r;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.edit(op, u64::MAX);
        g.edit(op, 0)
    }));
    assert!(outcome.is_ok(), "numbering past u64::MAX panicked");
}
