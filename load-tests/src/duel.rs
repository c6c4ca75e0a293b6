//! Scripted duels for lag compensation: a shooter that sees a running target `late_ticks` late
//! (an interpolation delay plus half a round trip) and aims exactly at what it draws, leading
//! only for the projectile's flight, as it would with no latency at all. Played on a bare
//! `Sim` (no network, no zone), deterministically from a seed: the target runs across the
//! shooter's view and turns back at random intervals, so the drawn velocity is sometimes stale,
//! as it is for a real player.

use pwn_sim::{Buttons, EntityId, HitTarget, InputSeq, PlayerInput, Sim, SimConfig, SimEvent, WorldDesc};
use std::collections::BTreeMap;

const SHOOTER: EntityId = EntityId(1);
const TARGET: EntityId = EntityId(2);
/// Ticks between two shots (the fire interval is 6).
const SHOT_EVERY_TICKS: u32 = 12;

/// How one duel went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuelOutcome {
    /// Shots fired.
    pub shots: u32,
    /// Shots that hit the target.
    pub hits: u32,
}

/// The shooter sees the world `late_ticks` late; with `rewind_ticks_max` above 0 its inputs
/// carry the tick it drew (the rewind bounded as a zone bounds it), otherwise none. The target
/// turns back every 1 to 2 s when `turning`, else runs straight.
pub fn duel(late_ticks: u64, rewind_ticks_max: u64, shots: u32, turning: bool, seed: u64) -> DuelOutcome {
    let mut cfg = SimConfig::default();
    cfg.character.max_health = u16::MAX;
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    let mut sim = Sim::new(w, cfg, seed).expect("a flat world builds");
    let c = sim.config().character.clone();
    let y = c.half_height_m + c.radius_m + 0.05;
    let place = |sim: &mut Sim, id: EntityId, x: f32, z: f32| {
        let state = pwn_sim::CharacterState::spawned_at(glam::Vec3::new(x, y, z), sim.config());
        sim.insert_character(id, state).expect("an empty spot");
    };
    place(&mut sim, SHOOTER, 0.0, 0.0);
    place(&mut sim, TARGET, 0.0, 16.0);
    let mut rng = pwn_sim::rng::SimRng::new(seed);
    let mut seen: BTreeMap<u64, glam::Vec3> = BTreeMap::new();
    let mut out = DuelOutcome { shots: 0, hits: 0 };
    let (mut direction, mut turn_at) = (1.0f32, 45u32);
    let mut t = 0u32;
    // (A bound on ticks in case the shooter can never see far enough back to aim.)
    while (out.shots < shots || !t.is_multiple_of(SHOT_EVERY_TICKS)) && t < 1_000_000 {
        t += 1;
        if turning && t >= turn_at {
            direction = -direction;
            turn_at = t + 30 + rng.below(30);
        }
        // Keep the target within 12 m either side of the line of fire.
        let x = sim.character(TARGET).map_or(0.0, |c| c.position_m.x);
        if x.abs() > 12.0 {
            direction = -x.signum();
        }
        let tick = sim.tick().0 + 1;
        let run = PlayerInput {
            seq: InputSeq(t),
            move_x: direction,
            buttons: Buttons(Buttons::RUN),
            ..PlayerInput::default()
        };
        let mut inputs = BTreeMap::from([(TARGET, run)]);
        // The newest state the shooter has is the end of the last tick; it draws the one
        // `late_ticks` before that.
        let view = tick.saturating_sub(1 + late_ticks);
        let mut shoot = PlayerInput { seq: InputSeq(t), ..PlayerInput::default() };
        let ready = t > 40 && t.is_multiple_of(SHOT_EVERY_TICKS) && out.shots < shots;
        if let (true, Some(drawn), Some(before)) = (ready, seen.get(&view), seen.get(&(view.wrapping_sub(1)))) {
            let velocity = (*drawn - *before) * sim.config().tick_hz as f32;
            let eye = sim.character(SHOOTER).map_or(glam::Vec3::ZERO, |c| c.eye_m(sim.config()));
            let speed = sim.config().projectile.muzzle_speed_mps;
            let mut aim_at = *drawn;
            for _ in 0..3 {
                aim_at = *drawn + velocity * (aim_at.distance(eye) / speed);
            }
            let d = aim_at - eye;
            shoot.yaw_rad = d.x.atan2(d.z);
            shoot.pitch_rad = d.y.atan2((d.x * d.x + d.z * d.z).sqrt());
            shoot.buttons = Buttons(Buttons::FIRE);
            // As a zone bounds it (`pwn_zone_node::zone::rewind_bound`).
            shoot.view_tick = if rewind_ticks_max == 0 { 0 } else { view.max(tick.saturating_sub(rewind_ticks_max)) };
            out.shots += 1;
        }
        inputs.insert(SHOOTER, shoot);
        let report = sim.step(&inputs);
        out.hits += report
            .events
            .iter()
            .filter(|e| matches!(e, SimEvent::Hit { target: HitTarget::Character(v), .. } if *v == TARGET))
            .count() as u32;
        if let Some(c) = sim.character(TARGET) {
            seen.insert(sim.tick().0, c.position_m);
        }
        seen.retain(|k, _| k + 64 > sim.tick().0);
    }
    // Let the last shot land.
    for _ in 0..20 {
        let report = sim.step(&BTreeMap::new());
        out.hits += report
            .events
            .iter()
            .filter(|e| matches!(e, SimEvent::Hit { target: HitTarget::Character(v), .. } if *v == TARGET))
            .count() as u32;
    }
    out
}
