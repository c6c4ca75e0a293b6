//! Predicting the local player.
//!
//! Every input is applied locally at once (`Predictor::input`) with exactly the quantized
//! input the server will apply, and the predicted state after it is remembered. When a snapshot
//! says the server has applied inputs up to sequence `n` and shows the player's state, the
//! predictor compares it with what it predicted after `n`:
//! - `[predict-1]` equal (they are on the same quantization grid, so equal means bit-equal): no
//!   correction; nothing is replayed;
//! - `[predict-2]` different: roll back to the server's state and replay every input after `n`;
//!   the visual position keeps the old prediction's offset and eases it out over time
//!   (`SMOOTHING_PER_S`), or snaps past `SNAP_DISTANCE_M`;
//! - `[predict-3]` at most `HISTORY_MAX` unacknowledged inputs are kept; older ones are dropped
//!   (a client that far ahead is reconciled against whatever the server says next);
//! - `[predict-4]` each input is predicted at the server tick it will be applied at: the
//!   snapshot that acknowledges input `n` at tick `t` gives the offset `t - n`, and input `s` is
//!   predicted at `s + offset` (moving platforms are where the server has them at that tick, so
//!   riding one is predicted exactly). When the offset changes, the unacknowledged inputs are
//!   replayed at their new ticks;
//! - `[predict-5]` an offset that grew since the last confirmed input means the server ran ticks
//!   without an input of this player (it arrived late) and repeated its last movement: the
//!   acknowledged input is predicted again from the last confirmed state, with those ticks run
//!   as the server ran them (`pwn_sim::Sim::predict_missed_at`, at most
//!   `MISSED_TICKS_REPLAYED_MAX`), before it is compared; the ticks without input may fall
//!   before or after it (a snapshot lost in between hides which), so each place is tried, the
//!   tick it was predicted at first, then from the latest. A late input then costs no
//!   correction.

use glam::Vec3;
use pwn_proto::WireInput;
use pwn_proto::delta::EntityState;
use pwn_sim::quantize::{dequantize_position, dequantize_velocity, dequantize_yaw};
use pwn_sim::{CharacterState, EntityId, PlayerInput, PredictedState, Sim};
use std::collections::VecDeque;

/// Unacknowledged inputs remembered (four seconds at 30 Hz).
pub const HISTORY_MAX: usize = 120;
/// A correction larger than this is shown at once instead of eased.
pub const SNAP_DISTANCE_M: f32 = 2.0;
/// Most server ticks without input replayed between two confirmed inputs (`[predict-5]`).
pub const MISSED_TICKS_REPLAYED_MAX: u64 = 30;
/// Ticks an acknowledged input may have landed at that `[predict-5]` tries (a correction that
/// no place explains costs this many short replays).
pub const LANDING_TICKS_TRIED_MAX: usize = 8;
/// Fraction of the remaining visual error removed per second.
pub const SMOOTHING_PER_S: f32 = 10.0;

/// Prediction counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictionStats {
    /// Snapshots whose state matched the prediction exactly.
    pub confirmations: u64,
    /// Snapshots that forced a rollback and replay.
    pub corrections: u64,
    /// Largest position error seen at a correction.
    pub error_m_max: f32,
    /// Sum of position errors at corrections (for the mean).
    pub error_m_sum: f64,
    /// Inputs replayed.
    pub replayed: u64,
}

/// The outcome of comparing a server state with the prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reconciled {
    /// Nothing to compare: the acknowledged input is not (or no longer) remembered.
    NotCompared,
    /// The server agrees with the prediction exactly.
    Confirmed,
    /// The server disagreed by `error_m`; the prediction was rolled back and replayed.
    Corrected {
        /// Distance between the predicted and the server's position.
        error_m: f32,
    },
}

/// The local player's predictor.
pub struct Predictor {
    sim: Sim,
    me: EntityId,
    history: VecDeque<Predicted>,
    visual_offset: Vec3,
    stats: PredictionStats,
    /// Server tick minus input sequence of the last acknowledged input (`[predict-4]`).
    tick_offset: Option<i64>,
    /// The last input the server confirmed (or corrected): its sequence, the server tick it
    /// was applied at, and the state after it (`[predict-5]`).
    confirmed: Option<(u32, u64, PredictedState)>,
}

/// One unacknowledged input and what it was predicted to give.
#[derive(Clone, Debug)]
struct Predicted {
    seq: u32,
    input: PlayerInput,
    state: PredictedState,
    /// The server tick it was predicted at (`None` before any acknowledgement).
    tick: Option<u64>,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor").field("me", &self.me).field("unacked", &self.history.len()).finish()
    }
}

impl Predictor {
    /// Predicts `me` in `sim` (the client's copy of the world, built from the same world
    /// description and configuration as the server's), starting from `start`.
    pub fn new(mut sim: Sim, me: EntityId, start: CharacterState) -> Result<Self, pwn_sim::SimError> {
        sim.insert_character(me, start)?;
        Ok(Self {
            sim,
            me,
            history: VecDeque::new(),
            visual_offset: Vec3::ZERO,
            stats: PredictionStats::default(),
            tick_offset: None,
            confirmed: None,
        })
    }

    /// Tells the predictor the server tick its start state is of and the first input it will
    /// predict: until that input is acknowledged, the server runs the character without input,
    /// which `[predict-5]` then predicts as it does for a late input (a player who starts on a
    /// moving platform is predicted exactly from its first input).
    pub fn started_at(&mut self, tick: u64, first_seq: u32) {
        if let (Some(state), Some(before)) = (self.sim.save_predicted(self.me), first_seq.checked_sub(1)) {
            self.confirmed = Some((before, tick, state));
        }
    }

    /// The counters.
    pub fn stats(&self) -> &PredictionStats {
        &self.stats
    }

    /// The predicted state now.
    pub fn predicted(&self) -> Option<&CharacterState> {
        self.sim.character(self.me)
    }

    /// Where to draw the player: the prediction plus the easing visual offset.
    pub fn render_position(&self) -> Option<Vec3> {
        self.predicted().map(|c| c.position_m + self.visual_offset)
    }

    /// Applies one input locally; returns the wire form to send (the same the server applies).
    pub fn input(&mut self, input: &PlayerInput) -> WireInput {
        let wire = WireInput::from_input(input);
        let applied = wire.to_input();
        self.predict_and_keep(wire.seq, applied);
        while self.history.len() > HISTORY_MAX {
            self.history.pop_front();
        }
        wire
    }

    /// Predicts one input at the tick the server will apply it (`[predict-4]`) and remembers it.
    fn predict_and_keep(&mut self, seq: u32, input: PlayerInput) {
        let tick = self.tick_of_input(seq);
        match tick {
            Some(tick) => self.sim.predict_step_at(self.me, input, tick),
            None => self.sim.predict_step(self.me, input),
        };
        if let Some(state) = self.sim.save_predicted(self.me) {
            self.history.push_back(Predicted { seq, input, state, tick });
        }
    }

    /// The server tick input `seq` is predicted at, once an acknowledgement has been seen.
    pub fn tick_of_input(&self, seq: u32) -> Option<u64> {
        // Saturating: a snapshot's tick comes from the network, whatever it says.
        self.tick_offset.map(|o| i64::from(seq).saturating_add(o).max(1) as u64)
    }

    /// The local player's projectiles in flight, as predicted.
    pub fn projectiles(&self) -> impl Iterator<Item = &pwn_sim::Projectile> {
        let me = self.me;
        self.sim.projectiles().filter(move |p| p.owner == me)
    }

    /// Whether the local player has a predicted projectile with this id.
    pub fn has_projectile(&self, id: EntityId) -> bool {
        self.sim.projectile(id).is_some()
    }

    /// The predicted character's yaw, radians.
    pub fn yaw_rad(&self) -> Option<f32> {
        self.predicted().map(|c| c.yaw_rad)
    }

    /// Moves a crate of the predicted world to where the server has it.
    pub fn mirror_crate(&mut self, id: EntityId, position: Vec3, rotation: glam::Quat) -> bool {
        self.sim.mirror_crate(id, position, rotation)
    }

    /// Puts a world object into the predicted world at the state the server shows (placed on
    /// first sight, moved and changed after). Returns false for one the world refuses.
    pub fn mirror_object(&mut self, id: EntityId, position: Vec3, rotation: glam::Quat, state: u16) -> bool {
        if self.sim.object(id).is_none() {
            return self.sim.place_object(id, position, rotation, state).is_ok();
        }
        self.sim.move_object(id, position, rotation).is_ok() && self.sim.set_object_state(id, state).is_ok()
    }

    /// Takes a world object out of the predicted world (removed, or out of view).
    pub fn forget_object(&mut self, id: EntityId) {
        self.sim.remove_object(id);
    }

    /// Places another character of the predicted world where the server has it (see
    /// `pwn_sim::Sim::mirror_character`).
    pub fn mirror_character(&mut self, id: EntityId, position: Vec3, velocity: Vec3) -> bool {
        id != self.me && self.sim.mirror_character(id, position, velocity)
    }

    /// Takes another character out of the predicted world.
    pub fn forget_character(&mut self, id: EntityId) {
        if id != self.me {
            self.sim.remove_character(id);
        }
    }

    /// Eases the visual offset for `dt_s` seconds of rendering.
    pub fn advance_visual(&mut self, dt_s: f32) {
        let keep = (1.0 - SMOOTHING_PER_S * dt_s).clamp(0.0, 1.0);
        self.visual_offset *= keep;
    }

    /// Reconciles with the server: `server` is the player's state in the snapshot of `tick`
    /// whose `input_ack` is the last input the server applied.
    pub fn reconcile(&mut self, tick: u64, input_ack: u32, server: &EntityState) -> Reconciled {
        while self.history.front().is_some_and(|p| p.seq < input_ack) {
            self.history.pop_front();
        }
        let Some(front) = self.history.front().cloned() else { return Reconciled::NotCompared };
        if front.seq != input_ack {
            // The acknowledged input is older than anything remembered: nothing to compare.
            return Reconciled::NotCompared;
        }
        self.history.pop_front();
        // Where the player is drawn now, before anything below moves the predicted world.
        let drawn = self.render_position().unwrap_or(Vec3::ZERO);
        self.tick_offset = Some(i64::try_from(tick).unwrap_or(i64::MAX).saturating_sub(i64::from(input_ack)));
        // Predicted at another tick: the inputs after it were too (`[predict-4]`).
        let moved = front.tick != Some(tick);
        let as_server = |predicted: &PredictedState| {
            let mut authoritative = predicted.clone();
            let c = &mut authoritative.character;
            c.position_m = dequantize_position(server.position);
            c.velocity_mps = dequantize_velocity(server.velocity);
            c.yaw_rad = dequantize_yaw(server.yaw);
            c.health = server.health;
            authoritative
        };
        let predicted = match self.confirmed.take() {
            Some((seq, at, state)) if moved && seq.checked_add(1) == Some(input_ack) && at < tick => {
                // The input landed at some tick after `at` and no later than `tick`, with ticks
                // without input around it: the tick it was predicted at first, then the latest.
                let mut candidates: Vec<u64> = front.tick.filter(|t| (at + 1..=tick).contains(t)).into_iter().collect();
                candidates.extend((at + 1..=tick).rev().take(LANDING_TICKS_TRIED_MAX));
                candidates.dedup();
                let mut found = None;
                let mut latest = None;
                for landed in candidates {
                    let Some(p) = self.repredict(&state, at, front.input, landed, tick) else { continue };
                    if as_server(&p).character == p.character {
                        found = Some(p);
                        break;
                    }
                    latest.get_or_insert(p);
                }
                found.or(latest).unwrap_or(front.state)
            }
            _ => front.state,
        };
        let authoritative = as_server(&predicted);
        self.confirmed = Some((input_ack, tick, authoritative.clone()));
        if authoritative.character == predicted.character {
            self.stats.confirmations += 1;
            if moved {
                // Right, but the inputs after it were predicted at the old ticks.
                self.replay_from(&authoritative, drawn);
            }
            return Reconciled::Confirmed;
        }
        let error = predicted.character.position_m.distance(authoritative.character.position_m);
        self.stats.corrections += 1;
        self.stats.error_m_max = self.stats.error_m_max.max(error);
        self.stats.error_m_sum += f64::from(error);
        self.replay_from(&authoritative, drawn);
        Reconciled::Corrected { error_m: error }
    }

    /// `[predict-5]`: the state at `tick` after `input` applied at `landed`, from `start`
    /// confirmed at `start_tick`, with the ticks around it run without input as the server ran
    /// them. `None`
    /// when too many ticks lie between. Leaves the predicted world at that state (the caller
    /// replays the later inputs).
    fn repredict(
        &mut self,
        start: &PredictedState,
        start_tick: u64,
        input: PlayerInput,
        landed: u64,
        tick: u64,
    ) -> Option<PredictedState> {
        if tick - start_tick > MISSED_TICKS_REPLAYED_MAX {
            return None;
        }
        self.sim.restore_predicted(start);
        for missed in start_tick + 1..landed {
            self.sim.predict_missed_at(self.me, missed);
        }
        self.sim.predict_step_at(self.me, input, landed);
        for missed in (landed..tick).map(|t| t + 1) {
            self.sim.predict_missed_at(self.me, missed);
        }
        self.sim.save_predicted(self.me)
    }

    /// Rolls back to `start` and replays every unacknowledged input; the player stays drawn
    /// where it was (`before`) and the difference eases out (`[predict-2]`).
    fn replay_from(&mut self, start: &PredictedState, before: Vec3) {
        self.sim.restore_predicted(start);
        let replay: Vec<(u32, PlayerInput)> = self.history.iter().map(|p| (p.seq, p.input)).collect();
        self.history.clear();
        for (s, i) in replay {
            self.predict_and_keep(s, i);
            self.stats.replayed += 1;
        }
        let after = self.predicted().map_or(before, |c| c.position_m);
        self.visual_offset = before - after;
        if self.visual_offset.length() > SNAP_DISTANCE_M {
            self.visual_offset = Vec3::ZERO;
        }
    }
}
