//! The zone core: the simulation plus everything per player (input buffer, snapshot state, chat
//! allowance), advanced one tick at a time with no IO. The async shell feeds it messages and
//! sends what each tick returns.

use crate::input_buffer::InputBuffer;
use crate::snapshots::ClientSnapshots;
use pwn_proto::delta::EntityState;
use pwn_proto::{ChatChannel, ChatSend, GameEvent, InputBatch, Snapshot};
use pwn_sim::quantize::{quantize_position, quantize_rotation, quantize_velocity, quantize_yaw};
use pwn_sim::{EntityId, EntityKind, HitTarget, Sim, SimError, SimEvent, StepReport};
use std::collections::BTreeMap;

mod objects;

/// Zone settings beyond the simulation's.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneConfig {
    /// Players see entities within this radius.
    pub interest_radius_m: f32,
    /// In a crowd, players see at most this many entities (the nearest): more would not fit
    /// the snapshot budget often enough to move smoothly, and each costs the zone work every
    /// tick.
    pub interest_entities_max: usize,
    /// Packed snapshot bytes per player per tick (capped at `SNAPSHOT_BUDGET_MAX_BYTES`, so a
    /// snapshot always fits in one datagram).
    pub snapshot_budget_bytes: usize,
    /// Proximity chat reaches this far.
    pub chat_radius_m: f32,
    /// Chat lines a player may send per second (a burst of as many is allowed).
    pub chat_lines_per_s: f32,
    /// The most a shot is rewound (lag compensation, `pwn_sim::lagcomp`): a shooter's view of
    /// other characters older than this is treated as this old. 0 turns rewinding off. At most
    /// the simulation's own bound (`REWIND_TICKS_MAX` ticks, a second at 30 Hz).
    pub max_rewind_ms: u32,
    /// Threads that build players' views (interest and snapshots, `crate::views`) and move
    /// characters (`pwn_sim::Sim::set_pool`) each tick: 1 does both on the tick's own thread;
    /// more runs them on a pool of that many (the same bytes either way).
    pub tick_threads: usize,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            interest_radius_m: 80.0,
            interest_entities_max: 128,
            snapshot_budget_bytes: SNAPSHOT_BUDGET_MAX_BYTES,
            chat_radius_m: 30.0,
            chat_lines_per_s: 2.0,
            tick_threads: 1,
            max_rewind_ms: MAX_REWIND_MS_DEFAULT,
        }
    }
}

/// The default bound on lag compensation: covers an interpolation delay of about 100 ms and a
/// round trip of 250 ms.
pub const MAX_REWIND_MS_DEFAULT: u32 = 250;

/// The view tick the simulation gets for an input applied at `tick`: `view_tick` moved
/// forward to at most `max_rewind_ticks` before `tick` (and never after it); 0 stays 0 (no
/// rewind).
pub fn rewind_bound(view_tick: u64, tick: u64, max_rewind_ticks: u64) -> u64 {
    if view_tick == 0 {
        return 0;
    }
    view_tick.clamp(tick.saturating_sub(max_rewind_ticks), tick)
}

/// Largest snapshot budget: with its header (30 bytes), `REMOVED_PER_SNAPSHOT_MAX` removals
/// (68 bytes) and a gateway's `Routed` wrapper (`pwn_proto::codec::ROUTED_OVERHEAD_BYTES`), a
/// snapshot then stays within `pwn_proto::codec::DATAGRAM_SIZE_MAX`.
pub const SNAPSHOT_BUDGET_MAX_BYTES: usize = 980;

/// Why a chat line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatRefused {
    /// Too many lines too fast.
    #[error("chat rate limit")]
    RateLimited,
    /// Empty or over the length limit.
    #[error("chat line empty or too long")]
    BadLength,
    /// The sender is not in this zone.
    #[error("unknown player")]
    UnknownPlayer,
}

pub(crate) struct PlayerSlot {
    pub(crate) inputs: InputBuffer,
    pub(crate) snapshots: ClientSnapshots,
    pub(crate) chat_tokens: f32,
    /// The cell owning the player in the store, when the zone serves part of a partitioned
    /// world (`crate::border`).
    pub(crate) cell: Option<pwn_store::keys::CellKey>,
}

/// What one tick produced for the shell to send.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// One snapshot per player.
    pub snapshots: Vec<(EntityId, Snapshot)>,
    /// Reliable events, each with its recipient.
    pub events: Vec<(EntityId, GameEvent)>,
    /// The simulation's own report (input counters, events).
    pub report: StepReport,
    /// Players whose input missed this tick after their inputs had started (the simulation
    /// repeated their last movement), plus inputs skipped to bound a queue.
    pub inputs_missed: u32,
    /// When each input applied this tick reached the zone (as given to `on_inputs`): this
    /// tick's snapshots acknowledge them, so the shell measures input-to-acknowledgement time.
    pub inputs_arrived: Vec<u64>,
    /// Wall time of the simulation step, for metrics and benchmarks only (nothing the zone
    /// computes depends on it).
    pub step_ms: f64,
    /// Wall time of building players' views (interest, snapshots), likewise.
    pub views_ms: f64,
}

/// A zone: its simulation and its players.
pub struct Zone {
    pub(crate) sim: Sim,
    pub(crate) cfg: ZoneConfig,
    pub(crate) players: BTreeMap<EntityId, PlayerSlot>,
    pending_chat: Vec<(EntityId, ChatSend)>,
    pub(crate) pending_events: Vec<(EntityId, GameEvent)>,
    /// Players placed since the last tick, announced to those near them.
    pending_spawns: Vec<EntityId>,
    /// Departing players and ghosts (`crate::border`).
    pub(crate) border: crate::border::BorderState,
    /// Projectiles that crossed borders (`crate::border_shots`).
    pub(crate) shots: crate::border_shots::ShotBook,
    /// Crates owned, held as ghosts and departing (`crate::border_crates`).
    pub(crate) crates: crate::border_crates::CrateBook,
    /// World objects' owners and versions (`crate::objects`).
    pub(crate) objects: crate::objects::ObjectBook,
    /// The threads that build players' views and move characters, when `tick_threads` is
    /// above 1 (shared with the simulation).
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    /// Scratch kept between ticks (a crowd's lists are large enough that allocating them
    /// afresh each tick had the kernel zeroing new pages every tick): what is visible this
    /// tick, and the list it is sorted in.
    visible: crate::views::Visible,
    tick_states: Vec<(EntityState, [f32; 2], f32)>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone").field("sim", &self.sim).field("players", &self.players.len()).finish()
    }
}

/// The wire form of an entity's state.
fn character_state(id: EntityId, c: &pwn_sim::CharacterState) -> EntityState {
    EntityState {
        id: id.0,
        position: quantize_position(c.position_m),
        velocity: quantize_velocity(c.velocity_mps),
        yaw: quantize_yaw(c.yaw_rad),
        rotation: 0,
        health: c.health,
    }
}

impl Zone {
    /// A zone around a built simulation. With `cfg.tick_threads` above 1 it starts a pool of
    /// that many threads for views and character moves (or does both on the tick's thread if
    /// they cannot start).
    pub fn new(mut sim: Sim, cfg: ZoneConfig) -> Self {
        let pool = (cfg.tick_threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cfg.tick_threads)
                    .thread_name(|i| format!("pwn-tick-pool-{i}"))
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "cannot start the tick's pool; running the tick serially"))
                    .ok()
            })
            .flatten()
            .map(std::sync::Arc::new);
        sim.set_pool(pool.clone());
        Self {
            pool,
            visible: crate::views::Visible::default(),
            tick_states: Vec::new(),
            sim,
            cfg,
            players: BTreeMap::new(),
            pending_chat: Vec::new(),
            pending_events: Vec::new(),
            pending_spawns: Vec::new(),
            border: crate::border::BorderState::default(),
            shots: crate::border_shots::ShotBook::default(),
            crates: crate::border_crates::CrateBook::default(),
            objects: crate::objects::ObjectBook::default(),
        }
    }

    /// The simulation (read-only).
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Players in the zone.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// The players this zone simulates (not ghosts, not departing ones).
    pub fn players(&self) -> impl Iterator<Item = EntityId> + '_ {
        self.players.keys().copied()
    }

    /// Puts a crate where the store says it came to rest (a cell this zone took over).
    pub fn restore_crate(
        &mut self,
        id: EntityId,
        position: glam::Vec3,
        rotation: glam::Quat,
        linvel: glam::Vec3,
        angvel: glam::Vec3,
    ) -> bool {
        self.sim.restore_crate(id, position, rotation, linvel, angvel)
    }

    /// The operator's bound on lag compensation (`ZoneConfig::max_rewind_ms`) in ticks: what a
    /// shot fired here, or handed over by a neighbour, may be rewound at most.
    pub(crate) fn max_rewind_ticks(&self) -> u64 {
        // Whole ticks within the bound, never past it (250 ms at 30 Hz: 7 ticks, 233 ms).
        u64::from(self.cfg.max_rewind_ms) * u64::from(self.sim.config().tick_hz) / 1_000
    }

    /// Joins the world clock: the next tick is `tick + 1`.
    pub fn join_clock(&mut self, tick: u64) {
        self.sim.join_clock(pwn_sim::Tick(tick));
    }

    /// A proximity chat line spoken in a neighbour zone at `at`: delivered with the next tick's
    /// events to this zone's players within the chat radius.
    pub fn border_chat(&mut self, from: EntityId, at: glam::Vec3, text: &str) {
        if text.trim().is_empty() || text.len() > pwn_proto::codec::TEXT_LEN_MAX || !at.is_finite() {
            return;
        }
        let r = self.cfg.chat_radius_m;
        for (p, _) in self.players.iter() {
            if self.sim.character(*p).is_some_and(|c| c.position_m.distance(at) <= r) {
                let line = GameEvent::Chat { from: from.0, channel: ChatChannel::Proximity, text: text.to_owned() };
                self.pending_events.push((*p, line));
            }
        }
    }

    /// Whether this zone simulates `player`.
    pub fn has_player(&self, player: EntityId) -> bool {
        self.players.contains_key(&player)
    }

    /// Adds a player's character at a spawn point.
    pub fn join(&mut self, player: EntityId) -> Result<(), SimError> {
        self.join_at(player, None)
    }

    /// Adds a player's character where `saved` says (a returning player), or at a spawn point
    /// if there is none or the simulation refuses it (outside the world).
    pub fn join_at(&mut self, player: EntityId, saved: Option<pwn_sim::CharacterState>) -> Result<(), SimError> {
        // Held here as another zone's ghost (its handoff was lost, its zone died): the player
        // itself takes the ghost's place.
        self.drop_ghost(player);
        match saved.map(|c| self.sim.insert_character(player, c)) {
            Some(Ok(_)) => {}
            Some(Err(SimError::Duplicate(id))) => return Err(SimError::Duplicate(id)),
            _ => {
                self.sim.spawn_character(player)?;
            }
        }
        self.players.insert(
            player,
            PlayerSlot {
                inputs: InputBuffer::new(),
                snapshots: ClientSnapshots::new(self.sim.config().tick_hz),
                chat_tokens: self.cfg.chat_lines_per_s,
                cell: None,
            },
        );
        self.pending_events.push((player, GameEvent::Joined { entity: player.0, tick: self.sim.tick().0 }));
        self.pending_spawns.push(player);
        Ok(())
    }

    /// Tells a player where it is again (a newer connection took it over): its `Joined` goes
    /// out with the next tick's events, and its snapshots start over from a full one.
    pub fn announce(&mut self, player: EntityId) {
        if let Some(p) = self.players.get_mut(&player) {
            p.snapshots = ClientSnapshots::new(self.sim.config().tick_hz);
            // The new connection numbers its inputs from the start again.
            p.inputs = InputBuffer::new();
            if let Some(mut state) = self.sim.save_predicted(player) {
                state.character.last_seq = None;
                self.sim.restore_predicted(&state);
            }
            self.pending_events.push((player, GameEvent::Joined { entity: player.0, tick: self.sim.tick().0 }));
        }
    }

    /// Removes a player and its character; returns the character's last state.
    pub fn leave(&mut self, player: EntityId) -> Option<pwn_sim::CharacterState> {
        self.players.remove(&player);
        self.sim.remove_character(player).map(|(c, _)| c)
    }

    /// An `Inputs` datagram from a player (it also acknowledges a snapshot), which reached the
    /// zone at `arrived` on the caller's clock (reported back when the input is applied).
    pub fn on_inputs(&mut self, player: EntityId, batch: &InputBatch, arrived: u64) {
        if let Some(p) = self.players.get_mut(&player) {
            p.inputs.receive_at(&batch.inputs, arrived);
            p.snapshots.ack(batch.ack_tick);
        } else {
            self.departing_inputs(player, batch, arrived);
        }
    }

    /// A snapshot acknowledgement.
    pub fn on_ack(&mut self, player: EntityId, tick: u64) {
        if let Some(p) = self.players.get_mut(&player) {
            p.snapshots.ack(tick);
        }
    }

    /// A chat line: checked for length and rate now, delivered with the next tick's events.
    pub fn on_chat(&mut self, player: EntityId, chat: ChatSend) -> Result<(), ChatRefused> {
        let p = self.players.get_mut(&player).ok_or(ChatRefused::UnknownPlayer)?;
        if chat.text.trim().is_empty() || chat.text.len() > pwn_proto::codec::TEXT_LEN_MAX {
            return Err(ChatRefused::BadLength);
        }
        if p.chat_tokens < 1.0 {
            return Err(ChatRefused::RateLimited);
        }
        p.chat_tokens -= 1.0;
        self.pending_chat.push((player, chat));
        Ok(())
    }

    /// Input counters of a player.
    pub fn input_counters(&self, player: EntityId) -> Option<&crate::input_buffer::InputCounters> {
        self.players.get(&player).map(|p| p.inputs.counters())
    }

    /// `Spawned` events for the characters that joined or respawned, to the players within
    /// the interest radius of each (a respawn to the player itself too; a join is `Joined`).
    fn announce_spawns(&mut self, out: &mut TickOutput, everyone: &[EntityId]) {
        let respawned = out.report.events.iter().filter_map(|e| match e {
            SimEvent::Spawned { entity, kind: EntityKind::Character } => Some((*entity, true)),
            _ => None,
        });
        let spawns: Vec<(EntityId, bool)> =
            std::mem::take(&mut self.pending_spawns).into_iter().map(|p| (p, false)).chain(respawned).collect();
        let r2 = self.cfg.interest_radius_m * self.cfg.interest_radius_m;
        for (entity, to_itself) in spawns {
            let Some(at) = self.sim.character(entity).map(|c| c.position_m) else { continue };
            let spawned = GameEvent::Spawned { entity: entity.0, position: quantize_position(at) };
            for p in everyone.iter().filter(|p| to_itself || **p != entity) {
                let near = self.sim.character(*p).is_some_and(|c| {
                    let d = c.position_m - at;
                    d.x * d.x + d.z * d.z <= r2
                });
                if near {
                    out.events.push((*p, spawned.clone()));
                }
            }
        }
    }

    /// Advances one tick: releases one input per player, steps the simulation, and builds every
    /// player's snapshot and events.
    pub fn tick(&mut self) -> TickOutput {
        let dt = self.sim.config().dt_s();
        let mut inputs = BTreeMap::new();
        let mut missed = 0u64;
        let mut released = Vec::with_capacity(self.players.len());
        let next_tick = self.sim.tick().0 + 1;
        let max_rewind_ticks = self.max_rewind_ticks();
        for (id, p) in &mut self.players {
            p.chat_tokens = (p.chat_tokens + self.cfg.chat_lines_per_s * dt).min(self.cfg.chat_lines_per_s);
            let before = p.inputs.counters().missing + p.inputs.counters().skipped;
            if let Some(mut i) = p.inputs.next_for_tick() {
                i.view_tick = rewind_bound(i.view_tick, next_tick, max_rewind_ticks);
                inputs.insert(*id, i);
            }
            released.extend(p.inputs.released_arrival());
            missed += p.inputs.counters().missing + p.inputs.counters().skipped - before;
        }
        let step_started = std::time::Instant::now();
        let report = self.sim.step(&inputs);
        let step_ms = step_started.elapsed().as_secs_f64() * 1e3;
        let tick = self.sim.tick().0;

        // Everything visible this tick, sorted by id: interest answers with positions in this
        // list, so a player's candidates come out in id order after sorting small integers,
        // which is what the snapshot builder walks in.
        let mut states = std::mem::take(&mut self.tick_states);
        states.clear();
        for (id, c) in self.sim.characters().filter(|(_, c)| c.alive()) {
            let speed = c.velocity_mps.length();
            states.push((character_state(id, c), [c.position_m.x, c.position_m.z], speed));
        }
        for (id, pos, rot, vel) in self.sim.crates() {
            let s = EntityState {
                id: id.0,
                position: quantize_position(pos),
                velocity: quantize_velocity(vel),
                yaw: 0,
                rotation: quantize_rotation(rot),
                health: 0,
            };
            states.push((s, [pos.x, pos.z], vel.length()));
        }
        // World objects: kind in the id, state in the health field (`pwn_proto::objects`).
        for o in self.sim.objects() {
            let s = EntityState {
                id: o.id.0,
                position: quantize_position(o.position_m),
                velocity: quantize_velocity(o.linvel_mps),
                yaw: 0,
                rotation: quantize_rotation(o.rotation),
                health: o.state,
            };
            states.push((s, [o.position_m.x, o.position_m.z], o.linvel_mps.length()));
        }
        states.sort_unstable_by_key(|(s, _, _)| s.id);
        self.visible.refill(tick, self.sim.config().tick_hz, &states, self.cfg.interest_radius_m);
        self.tick_states = states;

        let mut out = TickOutput {
            report,
            inputs_missed: missed.min(u64::from(u32::MAX)) as u32,
            inputs_arrived: released,
            step_ms,
            ..TickOutput::default()
        };
        out.events.append(&mut self.pending_events);
        let views_started = std::time::Instant::now();
        out.snapshots = crate::views::build_views(
            self.pool.as_deref(),
            &mut self.players,
            &self.sim,
            &self.cfg,
            tick,
            &self.visible,
        );
        out.views_ms = views_started.elapsed().as_secs_f64() * 1e3;

        let everyone: Vec<EntityId> = self.players.keys().copied().collect();
        for e in &out.report.events {
            let event = match *e {
                SimEvent::Hit { projectile, shooter, target, damage, .. } => GameEvent::Hit {
                    projectile: projectile.0,
                    shooter: shooter.0,
                    target: match target {
                        HitTarget::Character(t) | HitTarget::Crate(t) | HitTarget::Object(t) => t.0,
                        HitTarget::World => 0,
                    },
                    damage,
                },
                SimEvent::Death { entity, killer } => {
                    GameEvent::Death { entity: entity.0, killer: killer.map_or(0, |k| k.0) }
                }
                SimEvent::Spawned { entity, kind: EntityKind::Projectile } => {
                    // Only players who can see the shot hear of it; it flies deterministically
                    // on their side, so snapshots never carry projectiles.
                    // A shot that hit within its first tick is gone already: announce it where
                    // it struck, so its shooter's prediction is still confirmed.
                    let (owner, position_m, velocity_mps) = match self.sim.projectile(entity) {
                        Some(p) => (p.owner, p.position_m, p.velocity_mps),
                        None => match out.report.events.iter().find_map(|h| match h {
                            SimEvent::Hit { projectile, shooter, point_m, .. } if *projectile == entity => {
                                Some((*shooter, glam::Vec3::from(*point_m), glam::Vec3::ZERO))
                            }
                            _ => None,
                        }) {
                            Some(found) => found,
                            None => continue,
                        },
                    };
                    let p_position_m = position_m;
                    let fired = GameEvent::Fired {
                        projectile: entity.0,
                        owner: owner.0,
                        tick,
                        position: quantize_position(position_m),
                        velocity: quantize_velocity(velocity_mps),
                    };
                    let r2 = self.cfg.interest_radius_m * self.cfg.interest_radius_m;
                    for player in &everyone {
                        let sees = self.sim.character(*player).is_some_and(|c| {
                            let d = c.position_m - p_position_m;
                            d.x * d.x + d.z * d.z <= r2
                        });
                        if sees {
                            out.events.push((*player, fired.clone()));
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            out.events.extend(everyone.iter().map(|p| (*p, event.clone())));
        }
        self.announce_spawns(&mut out, &everyone);
        for (from, chat) in std::mem::take(&mut self.pending_chat) {
            let origin = self.sim.character(from).map(|c| c.position_m);
            for p in &everyone {
                let near = match (origin, self.sim.character(*p)) {
                    (Some(a), Some(b)) => a.distance(b.position_m) <= self.cfg.chat_radius_m,
                    _ => false,
                };
                if chat.channel == ChatChannel::Zone || near {
                    out.events
                        .push((*p, GameEvent::Chat { from: from.0, channel: chat.channel, text: chat.text.clone() }));
                }
            }
        }
        out
    }
}
