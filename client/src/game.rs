//! The client's game-loop core, with no IO: messages from the server go in
//! ([`GameClient::on_message`]), the game calls [`GameClient::update`] once per frame with the
//! time since the last frame and what the player wants, and gets back what to draw. Messages
//! for the server wait in an outbox the connection shell drains ([`GameClient::drain_outbox`]).
//!
//! Rules:
//! - `[game-1]` inputs go out at the simulation's tick rate whatever the frame rate (a
//!   fixed-step accumulator); after a stall at most `CATCH_UP_INPUTS_MAX` are sent at once and
//!   the rest of the stall is skipped (counted), so the server never receives a burst it would
//!   have to trim;
//! - `[game-2]` each `Inputs` datagram carries the newest `INPUT_REDUNDANCY` inputs (a lost
//!   datagram costs nothing) and acknowledges the newest snapshot applied;
//! - `[game-3]` prediction starts once the server shows the character at rest (before its first
//!   input the server moves it on its own, with timing the client cannot know) and the client
//!   has measured the link's jitter over `PACE_WINDOW_SNAPSHOTS` snapshots (half a second);
//!   until then the client only acknowledges snapshots;
//! - `[game-4]` the local player is drawn at its prediction (plus the easing correction),
//!   everyone else through the interpolator;
//! - `[game-5]` projectiles: the local player's are predicted (deterministic ids); the server's
//!   copy of one already predicted is dropped, so it never appears twice or pops; other shots
//!   fly from their `Fired` event along pwn-sim's ballistics, drawn at the interpolation time,
//!   and end on a `Hit` or at the end of their lifetime.
//! - `[game-6]` everything kept is bounded: events not yet taken by the game, remote
//!   projectiles, send times of unacknowledged inputs.
//! - `[game-7]` the client paces its inputs to keep the zone's input queue as short as the
//!   link allows ([`crate::pacing`]); its first inputs go out as one burst that deep.
//! - `[game-8]` the predicted world's crates are moved to the server's poses as snapshots show
//!   them (the client never simulates crates): walking into a crate that has fallen or been
//!   pushed is then predicted against where it is, not where the world file put it.
//! - `[game-10]` a `Joined` after the first (the gateway moved the player to another zone)
//!   starts the snapshot and prediction state over against the new zone, on the same
//!   connection.
//! - `[game-11]` a dead player's character is missing from its own view until it respawns; when
//!   it is back, prediction starts over as after joining (once the character rests where it
//!   came back; until then the client sends inputs that stand still, or the zone would repeat
//!   the last movement from before the death), so a respawn is counted as one, never as a
//!   correction or a prediction error.
//! - `[game-12]` other characters within `MIRROR_CHARACTERS_WITHIN_M` of the player are placed
//!   in the predicted world at each snapshot, moved on by their velocity to the tick being
//!   predicted, so the player's predicted movement keeps clear of them as the server's does;
//!   they are never simulated on the client, and projectiles pass through them there.
//! - `[game-13]` an `AuthorityMoved` (another zone took the player over at a border) changes
//!   nothing the client keeps: ticks, input sequences and the prediction go on. It is counted,
//!   with the ticks until a snapshot from the new zone acknowledges a new input (beyond the one
//!   tick each snapshot takes), and prediction errors in the `CROSSING_WINDOW_TICKS` after it are
//!   counted apart from the rest.
//! - `[game-9]` headless mode (bots) skips what only a renderer needs: other entities come
//!   straight from the newest snapshot, remote projectiles are not flown.
//! - `[game-14]` a client may play without prediction ([`GameClient::set_predict`], cheap load
//!   test bots): once it would start predicting ([game-3]) it sends the player's inputs as they
//!   come, with the same redundancy, acknowledgements, pacing and lag-compensation tick, and
//!   draws its own character where the newest snapshot shows it; it counts no prediction error
//!   or correction (it predicts nothing), only what the server measures of it. It decodes the
//!   entities of one snapshot in `BLIND_DECODE_EVERY_TICKS` (and acknowledges only those, so
//!   every baseline the zone uses is one it holds), enough to steer and aim; the header of
//!   every snapshot (input acknowledgement, backlog) is read as a predicting client reads it.
//!   Its driver reads what arrived once a tick, so arrival times say nothing of the link's
//!   jitter: its pacing aims for the queue a clean link needs (`[pace-1]`'s floor: none, one
//!   after a missed input), not for a tick of jitter its own reading made.
//! - `[game-15]` world objects in view are in the predicted world as the server has them
//!   (`crate::mirror`), so walking into a wall placed a moment ago is predicted;
//! - `[game-16]` edits of world objects ([`GameClient::edit`]) are numbered from the wall clock
//!   in microseconds, strictly increasing (`pwn_proto::objects` `[edit-1]`); each is answered
//!   once by an `EditDone` event, counted with the ticks it took (at most `EDITS_PENDING_MAX`
//!   waiting are timed).

mod edits;
mod events;
mod snapshots;

use crate::counters::ClientCounters;
use crate::frame::drawn;
pub use crate::frame::{Drawn, DrawnProjectile, Frame, Intent};
use crate::interp::Interpolator;
use crate::mirror::Mirror;
use crate::pacing::{PACE_WINDOW_SNAPSHOTS, Pacing};
use crate::predict::{Predictor, Reconciled};
use glam::Vec3;
use pwn_proto::delta::{ApplyError, EntityState, ReceivedViews};
use pwn_proto::{GameEvent, InputBatch, Message, Ping, Snapshot, SnapshotAck, WireInput};
use pwn_sim::quantize::{dequantize_position, dequantize_velocity, dequantize_yaw};
use pwn_sim::{CharacterState, EntityId, InputSeq, PlayerInput, Sim, SimConfig, SimError, WorldDesc};
use std::collections::{BTreeMap, VecDeque};

/// Inputs repeated in every `Inputs` datagram.
pub const INPUT_REDUNDANCY: usize = 3;
/// Inputs sent at once after a stall of the game loop (or in the first burst).
pub const CATCH_UP_INPUTS_MAX: u32 = 4;
/// Newest inputs kept for the next datagram: a whole burst fits one datagram.
const RECENT_INPUTS_MAX: usize = CATCH_UP_INPUTS_MAX as usize + INPUT_REDUNDANCY;
/// Events kept for the game between two frames; older ones are dropped first.
pub const EVENTS_KEPT_MAX: usize = 256;
/// Remote projectiles tracked.
pub const REMOTE_PROJECTILES_MAX: usize = 1_024;
/// Send times kept for measuring input acknowledgement.
pub const SENT_TIMES_MAX: usize = 256;
pub use crate::mirror::{MIRROR_CHARACTERS_WITHIN_M, MIRRORED_CRATES_MAX};
/// Ticks after a handoff whose prediction errors count as the crossing's (`[game-13]`).
pub const CROSSING_WINDOW_TICKS: u64 = 60;
/// A client without prediction decodes one snapshot's entities in this many ticks
/// (`[game-14]`).
pub const BLIND_DECODE_EVERY_TICKS: u64 = 3;
/// Seconds between round-trip probes.
pub const PING_INTERVAL_S: f64 = 1.0;
#[derive(Clone, Debug)]
struct RemoteProjectile {
    owner: u64,
    tick: u64,
    position_m: Vec3,
    velocity_mps: Vec3,
}

/// The client core: prediction, interpolation, projectiles and counters for one player.
pub struct GameClient {
    world: WorldDesc,
    cfg: SimConfig,
    tick_s: f64,
    me: EntityId,
    predictor: Option<Predictor>,
    /// Whether the client predicts its player once it can ([game-14]: not for cheap bots).
    predict: bool,
    /// Playing without prediction: past [game-3]'s wait, inputs go out as they come.
    blind: bool,
    views: ReceivedViews,
    interp: Interpolator,
    now_s: f64,
    accumulator_s: f64,
    next_seq: u32,
    recent: VecDeque<WireInput>,
    sent_at: VecDeque<(u32, f64)>,
    acked_tick: u64,
    /// Whether the player has been placed (its first `Joined`).
    placed: bool,
    last_snapshot_tick: u64,
    snapshots_since_join: u64,
    ack_sent: u64,
    input_ack: u32,
    remote_projectiles: BTreeMap<u64, RemoteProjectile>,
    /// What of the server's view the predicted world holds.
    mirror: Mirror,
    inventory: BTreeMap<u64, u32>,
    /// Edits sent and not yet answered: request number and when it was sent (`[game-16]`).
    edits_pending: BTreeMap<u64, f64>,
    /// The last edit request number used.
    last_edit_request: u64,
    /// Whether the player's own character was in the last snapshot's view (it is not while
    /// dead).
    own_in_view: bool,
    /// Back from the dead and not predicting yet: sending still inputs until the character
    /// rests (`[game-11]`).
    holding_still: bool,
    headless: bool,
    sampled: Vec<(u64, Vec3)>,
    events: VecDeque<GameEvent>,
    outbox: Vec<Message>,
    next_ping_s: f64,
    ping_seq: u64,
    pace: Pacing,
    counters: ClientCounters,
    /// Handoffs being measured (`[game-13]`).
    handoff: crate::handoff_meter::HandoffMeter,
    /// Prediction errors until this tick count as the last crossing's.
    crossing_until_tick: u64,
}

impl std::fmt::Debug for GameClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameClient").field("me", &self.me).field("predicting", &self.predictor.is_some()).finish()
    }
}

impl GameClient {
    /// A client for player `me` in the world `world` simulated with `cfg` (both must be the
    /// server's: the handshake checks the configuration's digest).
    pub fn new(world: WorldDesc, cfg: SimConfig, me: EntityId) -> Self {
        let tick_hz = cfg.tick_hz;
        Self {
            tick_s: f64::from(cfg.dt_s()),
            world,
            cfg,
            me,
            predictor: None,
            predict: true,
            blind: false,
            views: ReceivedViews::new(tick_hz),
            interp: Interpolator::new(tick_hz),
            now_s: 0.0,
            accumulator_s: 0.0,
            next_seq: 1,
            recent: VecDeque::new(),
            sent_at: VecDeque::new(),
            acked_tick: 0,
            last_snapshot_tick: 0,
            placed: false,
            snapshots_since_join: 0,
            ack_sent: 0,
            input_ack: 0,
            remote_projectiles: BTreeMap::new(),
            mirror: Mirror::default(),
            inventory: BTreeMap::new(),
            edits_pending: BTreeMap::new(),
            last_edit_request: 0,
            own_in_view: false,
            holding_still: false,
            headless: false,
            sampled: Vec::new(),
            events: VecDeque::new(),
            outbox: Vec::new(),
            next_ping_s: 0.0,
            ping_seq: 0,
            pace: Pacing::default(),
            counters: ClientCounters::default(),
            handoff: crate::handoff_meter::HandoffMeter::default(),
            crossing_until_tick: 0,
        }
    }

    /// Headless mode (`[game-9]`), for bots: frames carry the newest server states of other
    /// entities without interpolation, and no remote projectiles. Prediction, inputs and
    /// counters are unchanged.
    pub fn set_headless(&mut self, headless: bool) {
        self.headless = headless;
    }

    /// Whether to predict the local player (default) or play without prediction (`[game-14]`):
    /// a cheap bot that sends inputs, acknowledges snapshots and is paced like any client, at a
    /// fraction of the CPU.
    pub fn set_predict(&mut self, predict: bool) {
        self.predict = predict;
    }

    /// Whether inputs go out: predicting, or playing without prediction (`[game-14]`).
    fn driving(&self) -> bool {
        self.predictor.is_some() || self.blind
    }

    /// Records that the player was placed (a shell that consumed the first `Joined` itself).
    pub fn mark_placed(&mut self) {
        self.placed = true;
    }

    /// The local player's entity id.
    pub fn me(&self) -> EntityId {
        self.me
    }

    /// The client's clock: the sum of every `update`'s `dt_s`.
    pub fn now_s(&self) -> f64 {
        self.now_s
    }

    /// The server tick (fractional) remote entities are drawn at now, once snapshots arrive.
    pub fn render_tick(&self) -> Option<f64> {
        self.interp.render_tick(self.now_s)
    }

    /// Whether the local player is being predicted yet (`[game-3]`).
    pub fn predicting(&self) -> bool {
        self.predictor.is_some()
    }

    /// The player's items of value, id to kind, as the zone last reported them.
    pub fn inventory(&self) -> &BTreeMap<u64, u32> {
        &self.inventory
    }

    /// The newest view the client holds (the tick and every entity in it), if any.
    pub fn latest_view(&self) -> Option<(u64, &pwn_proto::delta::View)> {
        self.views.latest()
    }

    /// The counters.
    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Mutable counters, for the connection shell's byte counts.
    pub fn counters_mut(&mut self) -> &mut ClientCounters {
        &mut self.counters
    }

    /// Messages for the server, oldest first.
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, Message> {
        self.outbox.drain(..)
    }

    /// A message from the server that arrived at `arrival_s` on the client's clock.
    pub fn on_message(&mut self, arrival_s: f64, message: Message) {
        match message {
            Message::Snapshot(s) => self.on_snapshot(arrival_s, &s),
            Message::Pong(p) => {
                self.counters.rtt_ms = (arrival_s - p.sent_us as f64 / 1e6).max(0.0) * 1e3;
            }
            Message::Event(e) => self.on_event(e),
            _ => {}
        }
    }

    /// `[game-10]`: a new zone has its own ticks and its own queue of our inputs: start over
    /// with its snapshots, keeping the connection, counters and input numbering.
    fn zone_switched(&mut self) {
        self.counters.zone_switches += 1;
        self.views = ReceivedViews::new(self.cfg.tick_hz);
        self.interp = Interpolator::new(self.cfg.tick_hz);
        self.predictor = None;
        self.blind = false;
        self.acked_tick = 0;
        self.ack_sent = 0;
        self.last_snapshot_tick = 0;
        self.input_ack = 0;
        self.snapshots_since_join = 0;
        self.sent_at.clear();
        self.recent.clear();
        self.mirror = Mirror::default();
        self.remote_projectiles.clear();
        self.pace = Pacing::default();
        self.own_in_view = false;
        self.holding_still = false;
    }

    fn start_predicting(&mut self, tick: u64, state: &EntityState) {
        if !self.predict {
            // [game-14]: the same start, without a predicted world.
            self.blind = true;
            self.holding_still = false;
            self.pace.started(self.now_s);
            return;
        }
        let mut c = CharacterState::spawned_at(dequantize_position(state.position), &self.cfg);
        c.velocity_mps = dequantize_velocity(state.velocity);
        c.yaw_rad = dequantize_yaw(state.yaw);
        c.health = state.health;
        // Prediction starts with the character at rest: standing on something.
        c.grounded = state.velocity == [0, 0, 0];
        let built: Result<Predictor, SimError> =
            Sim::new(self.world.clone(), self.cfg.clone(), 1).and_then(|sim| Predictor::new(sim, self.me, c));
        match built {
            Ok(mut p) => {
                p.started_at(tick, self.next_seq);
                self.predictor = Some(p);
                self.holding_still = false;
                // A new predicted world starts from the world file: mirror everything again.
                self.mirror = Mirror::default();
                // The first burst has yet to reach the server and show in the reports.
                self.pace.started(self.now_s);
            }
            // The world description was accepted by the server, so this cannot fail unless the
            // client was given another world: stay a spectator rather than crash.
            Err(e) => self.push_event(GameEvent::Notice { text: format!("cannot predict: {e}") }),
        }
    }

    fn push_event(&mut self, e: GameEvent) {
        self.counters.events += 1;
        self.events.push_back(e);
        while self.events.len() > EVENTS_KEPT_MAX {
            self.events.pop_front();
        }
    }

    /// Advances the client by `dt_s` seconds of the game loop with the player's `intent`:
    /// sends inputs at the tick rate (`[game-1]`), eases corrections, and returns what to draw.
    pub fn update(&mut self, dt_s: f32, intent: &Intent) -> Frame {
        let dt = f64::from(dt_s.max(0.0));
        self.now_s += dt;
        self.accumulator_s += dt;
        let mut due = 0u32;
        loop {
            let period = self.tick_s * self.pace.period_scale();
            if self.accumulator_s < period {
                break;
            }
            self.accumulator_s -= period;
            if self.driving() {
                self.pace.input_sent(self.now_s, self.tick_s);
            }
            if due < CATCH_UP_INPUTS_MAX {
                due += 1;
            } else {
                self.counters.inputs_skipped += 1;
            }
        }
        if due > 0 && self.driving() && self.counters.inputs_sent == 0 {
            // The first inputs fill the server's queue to the target depth at once.
            due = due.max(u32::from(self.pace.target(self.jitter_ticks(), self.now_s)) + 1);
        }
        for _ in 0..due {
            self.send_input(intent);
        }
        if due > 0 {
            while self.recent.len() > (due as usize).max(INPUT_REDUNDANCY) {
                self.recent.pop_front();
            }
            self.send_inputs_datagram();
        }
        if self.now_s >= self.next_ping_s {
            self.next_ping_s = self.now_s + PING_INTERVAL_S;
            self.ping_seq += 1;
            let sent_us = (self.now_s * 1e6) as u64;
            self.outbox.push(Message::Ping(Ping { seq: self.ping_seq, sent_us }));
        }
        if let Some(p) = self.predictor.as_mut() {
            p.advance_visual(dt_s);
        }
        self.counters.interpolation_delay_ticks = self.interp.delay_ticks();
        self.frame()
    }

    fn send_input(&mut self, intent: &Intent) {
        if !self.driving() && self.holding_still {
            // `[game-11]`: inputs that stand still, so the zone, which repeats a player's last
            // movement when an input is missing, lets the character come to rest.
            let input = PlayerInput { seq: InputSeq(self.next_seq), yaw_rad: intent.yaw_rad, ..PlayerInput::default() };
            self.next_seq += 1;
            self.recent.push_back(WireInput::from_input(&input));
            while self.recent.len() > RECENT_INPUTS_MAX {
                self.recent.pop_front();
            }
            self.counters.inputs_sent += 1;
            return;
        }
        if !self.driving() {
            // Not predicting yet ([game-3]): only acknowledge.
            if self.acked_tick > self.ack_sent {
                self.ack_sent = self.acked_tick;
                self.outbox.push(Message::SnapshotAck(SnapshotAck { tick: self.acked_tick }));
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let input = PlayerInput {
            seq: InputSeq(seq),
            move_x: intent.move_x,
            move_z: intent.move_z,
            yaw_rad: intent.yaw_rad,
            pitch_rad: intent.pitch_rad,
            buttons: intent.buttons,
            // The tick remote characters are drawn at now: the zone tests this input's shot
            // against them where they were then (lag compensation).
            view_tick: self.interp.render_tick(self.now_s).map_or(0, |t| t.round().max(0.0) as u64),
        };
        let wire = match self.predictor.as_mut() {
            Some(p) => {
                let before = p.projectiles().count();
                let wire = p.input(&input);
                if p.projectiles().count() > before {
                    self.counters.projectiles_predicted += 1;
                }
                wire
            }
            None => WireInput::from_input(&input),
        };
        self.recent.push_back(wire);
        while self.recent.len() > RECENT_INPUTS_MAX {
            self.recent.pop_front();
        }
        self.sent_at.push_back((seq, self.now_s));
        while self.sent_at.len() > SENT_TIMES_MAX {
            self.sent_at.pop_front();
        }
        self.counters.inputs_sent += 1;
    }

    /// One `Inputs` datagram with the newest inputs ([game-2]); a burst or a catch-up travels
    /// whole in it, so the server receives it at once.
    fn send_inputs_datagram(&mut self) {
        if (!self.driving() && !self.holding_still) || self.recent.is_empty() {
            return;
        }
        self.ack_sent = self.acked_tick;
        let inputs = self.recent.iter().rev().copied().collect();
        self.outbox.push(Message::Inputs(InputBatch { ack_tick: self.acked_tick, inputs }));
    }

    fn frame(&mut self) -> Frame {
        let mut frame = Frame { events: self.events.drain(..).collect(), ..Frame::default() };
        let latest = self.views.latest().map(|(_, v)| v);
        if let Some(p) = &self.predictor {
            if let (Some(position_m), Some(c)) = (p.render_position(), p.predicted()) {
                frame.me = Some(Drawn { id: self.me.0, position_m, yaw_rad: c.yaw_rad, health: c.health });
            }
            frame.projectiles.extend(p.projectiles().map(|q| DrawnProjectile {
                id: q.id.0,
                owner: q.owner.0,
                position_m: q.position_m,
                predicted: true,
            }));
        } else if let Some(s) = latest.and_then(|v| v.get(&self.me.0)) {
            frame.me = Some(drawn(s, dequantize_position(s.position)));
        }
        if self.headless {
            // `[game-9]`: the newest states as they are; nothing is interpolated.
            if let Some(v) = latest {
                frame.others.extend(
                    v.values().filter(|s| s.id != self.me.0).map(|s| drawn(s, dequantize_position(s.position))),
                );
            }
            return frame;
        }
        let mut sampled = std::mem::take(&mut self.sampled);
        self.interp.sample_into(self.now_s, &mut sampled);
        for (id, position_m) in sampled.iter().copied() {
            if id == self.me.0 {
                continue;
            }
            let s = latest.and_then(|v| v.get(&id)).copied().unwrap_or(EntityState { id, ..EntityState::default() });
            frame.others.push(drawn(&s, position_m));
        }
        self.sampled = sampled;
        // Remote shots at the interpolation time ([game-5]).
        let render_tick = self.interp.render_tick(self.now_s);
        let lifetime = f64::from(self.cfg.projectile.lifetime_ticks);
        let gravity = Vec3::new(0.0, -self.cfg.gravity_mps2 * self.cfg.projectile.gravity_scale, 0.0);
        let newest_tick = self.views.latest().map_or(0, |(t, _)| t) as f64;
        self.remote_projectiles.retain(|_, q| newest_tick - (q.tick as f64) <= lifetime);
        if let Some(at) = render_tick {
            for (id, q) in &self.remote_projectiles {
                let age_ticks = at - q.tick as f64;
                if !(0.0..=lifetime).contains(&age_ticks) {
                    continue;
                }
                let t = (age_ticks * self.tick_s) as f32;
                let position_m = q.position_m + q.velocity_mps * t + gravity * (0.5 * t * t);
                frame.projectiles.push(DrawnProjectile { id: *id, owner: q.owner, position_m, predicted: false });
            }
        }
        frame
    }
}
