//! The zone node's async shell: accepts players over pwn-net, feeds their messages to the
//! [`Zone`] core, runs the fixed tick, and sends each tick's snapshots and events.
//!
//! The tick never waits on the network: connection tasks hand messages to the tick through a
//! bounded inbox (full means dropped and counted), snapshots go out as datagrams (queued, never
//! awaited), and reliable events go through a bounded per-player queue drained by a writer task.

use crate::items::{ItemOp, Items, check_give};
use crate::links::{Sink, ToZone, serve_direct, serve_gateway};
use crate::persist::{PlayerState, SimBounds, checkpoint, crate_states, save_players};
use crate::zone::Zone;
use pwn_net::NetServer;
use pwn_proto::{GameEvent, Message, PeerRole, RefuseCode};
use pwn_sim::EntityId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages waiting for the tick, from all connections together.
pub const INBOX_MAX: usize = 65_536;
/// Messages the tick takes from the inbox per tick, so a flood cannot stretch a tick.
pub const INBOX_PER_TICK_MAX: usize = 16_384;

/// Metric names of the zone node.
pub mod metric {
    /// Tick duration histogram (milliseconds).
    pub const TICK_MS: &str = "pwn_zone_tick_ms";
    /// Players connected.
    pub const PLAYERS: &str = "pwn_zone_players";
    /// Snapshot bytes sent (all players).
    pub const SNAPSHOT_BYTES: &str = "pwn_zone_snapshot_bytes_total";
    /// Messages dropped because the inbox was full.
    pub const INBOX_DROPPED: &str = "pwn_zone_inbox_dropped_total";
    /// Events dropped because a player's queue was full.
    pub const EVENTS_DROPPED: &str = "pwn_zone_events_dropped_total";
    /// Inputs that arrived too late or were missing, per tick.
    pub const INPUTS_MISSING: &str = "pwn_zone_inputs_missing_total";
    /// Checkpoints written.
    pub const CHECKPOINTS: &str = "pwn_zone_checkpoints_total";
    /// Time from taking a checkpoint's state to its commit (milliseconds).
    pub const CHECKPOINT_LAG_MS: &str = "pwn_zone_checkpoint_lag_ms";
    /// Bytes sent to each client over the last second (one sample per client per second).
    pub const CLIENT_DOWN_BYTES_PER_S: &str = "pwn_zone_client_down_bytes_per_s";
    /// Departing players not saved because the queue to the store was full.
    pub const DEPARTURES_DROPPED: &str = "pwn_zone_departures_dropped_total";
    /// Entities in the simulation (characters, crates, projectiles).
    pub const ENTITIES: &str = "pwn_zone_entities";
    /// Time from an input reaching the zone process to the first snapshot acknowledging it
    /// being queued (milliseconds).
    pub const INPUT_ACK_MS: &str = "pwn_zone_input_ack_ms";
}

/// Where and how often the zone checkpoints its entities.
#[derive(Clone, Debug)]
pub struct Persistence {
    /// The store.
    pub store: pwn_store::Store,
    /// The cell the zone holds (the whole world until the partitioner splits it).
    pub cell: pwn_store::keys::CellKey,
    /// The lease epoch every write is fenced by.
    pub epoch: u64,
    /// Ticks between checkpoints (30: once a second at 30 Hz).
    pub interval_ticks: u32,
}

/// A checkpoint handed to the writer: when it was taken, crates, players.
type CheckpointStates = Option<(Instant, Vec<crate::persist::CrateState>, Vec<PlayerState>)>;

/// Players leaving, waiting to be saved (`[persist-4]`); a full queue means the store is far
/// behind, and the player's last checkpoint stands (counted).
pub const DEPARTURES_QUEUE_MAX: usize = 4_096;

/// Writes the newest checkpoint handed over, and every departing player, on blocking threads,
/// until the lease is lost or the zone stops. A slow store never delays the tick: checkpoints
/// not yet written are replaced by newer ones (departures are not: each is written).
async fn persist_loop(
    p: Persistence,
    bounds: SimBounds,
    mut states: tokio::sync::watch::Receiver<CheckpointStates>,
    mut departures: mpsc::Receiver<PlayerState>,
) {
    let mut checkpoints_open = true;
    loop {
        let (store, cell, epoch) = (p.store.clone(), p.cell, p.epoch);
        let written = tokio::select! {
            changed = states.changed(), if checkpoints_open => {
                if changed.is_err() {
                    checkpoints_open = false;
                    continue;
                }
                let Some((taken, crates, players)) = states.borrow_and_update().clone() else { continue };
                let written = tokio::task::spawn_blocking(move || {
                    checkpoint(&store, cell, epoch, &crates, &players, &bounds).map(|()| crates.len() + players.len())
                })
                .await;
                if let Ok(Ok(n)) = &written {
                    metrics::counter!(metric::CHECKPOINTS).increment(1);
                    metrics::histogram!(metric::CHECKPOINT_LAG_MS).record(taken.elapsed().as_secs_f64() * 1e3);
                    tracing::info!(cell = %p.cell, epoch = p.epoch, entities = n, "checkpoint written");
                }
                written.map(|r| r.map(|_| ()))
            }
            departure = departures.recv() => {
                let Some(player) = departure else {
                    if checkpoints_open { continue } else { return }
                };
                let written = tokio::task::spawn_blocking(move || save_players(&store, cell, epoch, &[player])).await;
                if let Ok(Ok(())) = &written {
                    tracing::info!(player = player.id.0, "player saved on leaving");
                }
                written
            }
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(pwn_store::StoreError::Fenced { found, .. })) => {
                tracing::error!(cell = %p.cell, epoch = p.epoch, ?found, "lease lost: this zone no longer writes its cell");
                return;
            }
            Ok(Err(e)) => tracing::warn!(cell = %p.cell, error = %e, "write failed; the next checkpoint will retry"),
            Err(e) => tracing::error!(error = %e, "persistence task failed"),
        }
        if !checkpoints_open && departures.is_closed() && departures.is_empty() {
            return;
        }
    }
}

/// Counters a caller (a test, a benchmark) can read while the zone runs.
#[derive(Debug, Default)]
pub struct ZoneStats {
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Players connected now.
    pub players: AtomicU64,
    /// Ticks whose work took longer than the tick period.
    pub overruns: AtomicU64,
    /// Inputs that missed their tick (or were skipped), all players.
    pub inputs_missed: AtomicU64,
    /// Durations of the ticks since the last [`ZoneStats::take_tick_ms`], milliseconds (at most
    /// `TICK_SAMPLES_MAX`; older ones are dropped if nobody takes them).
    pub tick_ms: std::sync::Mutex<Vec<f32>>,
    /// Time from an input reaching the zone process to the queueing of the first snapshot
    /// that acknowledges it, milliseconds, as a histogram of `INPUT_ACK_BUCKETS` buckets of
    /// 1 ms (the last holds everything beyond), since the last
    /// [`ZoneStats::take_input_ack_ms`].
    pub input_ack_ms: std::sync::Mutex<Vec<u64>>,
}

/// Buckets of [`ZoneStats::input_ack_ms`] (1 ms each).
pub const INPUT_ACK_BUCKETS: usize = 256;

/// Tick durations kept for [`ZoneStats::take_tick_ms`].
pub const TICK_SAMPLES_MAX: usize = 4_096;

impl ZoneStats {
    /// The tick durations recorded since the last call.
    pub fn take_tick_ms(&self) -> Vec<f32> {
        self.tick_ms.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }

    /// Counts input-to-acknowledgement times (milliseconds).
    pub fn record_input_acks(&self, ms: impl Iterator<Item = f64>) {
        if let Ok(mut h) = self.input_ack_ms.lock() {
            h.resize(INPUT_ACK_BUCKETS, 0);
            // One registry lookup per tick, not per input.
            let metric = metrics::histogram!(metric::INPUT_ACK_MS);
            for m in ms {
                metric.record(m);
                h[(m.max(0.0) as usize).min(INPUT_ACK_BUCKETS - 1)] += 1;
            }
        }
    }

    /// The input-to-acknowledgement histogram since the last call (`INPUT_ACK_BUCKETS` 1 ms
    /// buckets, or empty if nothing was recorded).
    pub fn take_input_ack_ms(&self) -> Vec<u64> {
        self.input_ack_ms.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

fn player_states(zone: &Zone, persistent: &std::collections::HashSet<EntityId>) -> Vec<PlayerState> {
    persistent.iter().filter_map(|id| zone.sim().character(*id).map(|c| PlayerState::of(*id, c))).collect()
}

/// Runs a zone node on `net` until `shutdown` completes. Gateways link with the `Gateway`
/// role, prove `service_key` (without one, none can link), and attach their players by id; with `direct_players` set, players may also connect
/// directly (development, tests, load tests without a gateway) and get ids counting up from it.
pub async fn run(
    mut net: NetServer,
    mut zone: Zone,
    direct_players: Option<u64>,
    service_key: Option<[u8; 32]>,
    persistence: Option<Persistence>,
    stats: Arc<ZoneStats>,
    shutdown: impl Future<Output = ()>,
) {
    let (checkpoint_tx, checkpoint_rx) = tokio::sync::watch::channel(None);
    let (departure_tx, departure_rx) = mpsc::channel::<PlayerState>(DEPARTURES_QUEUE_MAX);
    let interval_ticks = persistence.as_ref().map_or(0, |p| u64::from(p.interval_ticks.max(1)));
    let store = persistence.as_ref().map(|p| p.store.clone());
    let mut items = persistence.as_ref().map(|p| Items::start(p.clone()));
    let persister =
        persistence.map(|p| tokio::spawn(persist_loop(p, SimBounds::of(zone.sim()), checkpoint_rx, departure_rx)));
    // Players who came through a gateway: the ones saved and restored (`[persist-4]`).
    let mut persistent: std::collections::HashSet<EntityId> = std::collections::HashSet::new();
    // The last state of players who left, newest last: a player back before its departure
    // reached the store (the link read the store already) is placed from here, never from an
    // older checkpoint. Bounded like the departures queue.
    let mut departed: std::collections::VecDeque<PlayerState> = std::collections::VecDeque::new();
    let (inbox_tx, mut inbox) = mpsc::channel::<ToZone>(INBOX_MAX);
    let next_id = Arc::new(AtomicU64::new(direct_players.unwrap_or(0)));
    let accept_inbox = inbox_tx.clone();
    let acceptor = tokio::spawn(async move {
        while let Some(incoming) = net.accept().await {
            let inbox = accept_inbox.clone();
            let next_id = next_id.clone();
            let store = store.clone();
            tokio::spawn(async move {
                match incoming.handshake().await {
                    Ok(conn) if conn.peer.role == PeerRole::Gateway => {
                        serve_gateway(conn, inbox, store, service_key).await
                    }
                    Ok(conn) if direct_players.is_none() => {
                        conn.tx.refuse(RefuseCode::Unavailable, "players connect through a gateway".into()).await;
                    }
                    Ok(conn) => {
                        let player = EntityId(next_id.fetch_add(1, Ordering::Relaxed));
                        tracing::info!(player = %player, remote = %conn.peer.remote, "player connected");
                        serve_direct(conn, player, inbox).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "handshake failed"),
                }
            });
        }
    });

    let period = zone.sim().config().dt_s();
    let mut interval = tokio::time::interval(Duration::from_secs_f32(period));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each player's sink, event queue, and the connection it came on (`[link-4]`).
    let mut players: HashMap<EntityId, (Sink, mpsc::Sender<GameEvent>, u64)> = HashMap::new();
    // Bytes sent to each player (snapshots and pongs are counted where they are encoded).
    let mut bytes_sent: HashMap<EntityId, u64> = HashMap::new();
    let ticks_per_s = (1.0 / period).round().max(1.0) as u64;
    // Input arrival times are given to the core as microseconds since this instant.
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = interval.tick() => {}
        }
        let started = Instant::now();
        for _ in 0..INBOX_PER_TICK_MAX {
            let Ok(msg) = inbox.try_recv() else { break };
            match msg {
                ToZone::Joined { player, sink, events, saved, link } => {
                    if let Some(entry) = players.get_mut(&player) {
                        // `[link-4]`: a newer connection takes the player over as it is.
                        tracing::info!(player = %player, "player taken over by a newer connection");
                        *entry = (sink, events, link);
                        zone.announce(player);
                        // The new connection starts with nothing: it needs the inventory too.
                        if let (Some(items), true) = (&mut items, persistent.contains(&player)) {
                            let _ = items.submit(ItemOp::Load { player });
                        }
                        continue;
                    }
                    let recent = departed.iter().rposition(|d| d.id == player).and_then(|i| departed.remove(i));
                    let saved = recent.or(saved);
                    match zone.join_at(player, saved.and_then(|s| s.character(zone.sim().config()))) {
                        Ok(()) => {
                            tracing::debug!(player = %player, "placed in the world");
                            if matches!(sink, Sink::Routed { .. }) {
                                persistent.insert(player);
                                if let Some(items) = &mut items {
                                    let _ = items.submit(ItemOp::Load { player });
                                }
                            }
                            players.insert(player, (sink, events, link));
                        }
                        Err(e) => {
                            tracing::warn!(player = %player, error = %e, "cannot place player");
                            sink.refuse(RefuseCode::Unavailable, "cannot place you in the world").await;
                        }
                    }
                }
                ToZone::Left { player, link } => {
                    if players.get(&player).is_none_or(|(_, _, l)| *l != link) {
                        continue;
                    }
                    let last = zone.leave(player);
                    if persistent.remove(&player)
                        && let Some(c) = last
                    {
                        let state = PlayerState::of(player, &c);
                        departed.push_back(state);
                        while departed.len() > DEPARTURES_QUEUE_MAX {
                            departed.pop_front();
                        }
                        if departure_tx.try_send(state).is_err() {
                            metrics::counter!(metric::DEPARTURES_DROPPED).increment(1);
                        }
                    }
                    players.remove(&player);
                    tracing::info!(player = %player, "player left");
                }
                ToZone::Message { player, message, arrived } => match message {
                    Message::Inputs(batch) => {
                        let arrived_us = arrived.saturating_duration_since(epoch).as_micros() as u64;
                        zone.on_inputs(player, &batch, arrived_us)
                    }
                    Message::SnapshotAck(ack) => zone.on_ack(player, ack.tick),
                    Message::Chat(chat) => {
                        if let Err(e) = zone.on_chat(player, chat) {
                            tracing::debug!(player = %player, error = %e, "chat refused");
                        }
                    }
                    Message::GiveItem(give) => {
                        let to = EntityId(give.to);
                        let checked = check_give(zone.sim(), |id| persistent.contains(&id), player, to);
                        let submitted = match &mut items {
                            Some(items) => {
                                checked.and_then(|()| items.submit(ItemOp::Give { item: give.item, from: player, to }))
                            }
                            None => Err("this world keeps no items"),
                        };
                        if let (Err(why), Some((_, events, _))) = (submitted, players.get(&player)) {
                            metrics::counter!(crate::items::REFUSED_METRIC, "reason" => "rules").increment(1);
                            let _ = events.try_send(GameEvent::Notice { text: format!("cannot give: {why}") });
                        }
                    }
                    _ => {}
                },
            }
        }
        let mut out = zone.tick();
        if let Some(items) = &mut items {
            // A player killed by another drops one item to the killer.
            for e in &out.report.events {
                if let pwn_sim::SimEvent::Death { entity, killer: Some(killer) } = *e
                    && entity != killer
                    && persistent.contains(&entity)
                    && persistent.contains(&killer)
                {
                    let _ = items.submit(ItemOp::Loot { victim: entity, killer });
                }
            }
            items.drain(&mut out.events);
        }
        if interval_ticks > 0 && zone.sim().tick().0.is_multiple_of(interval_ticks) {
            checkpoint_tx.send_replace(Some((
                Instant::now(),
                crate_states(zone.sim()),
                player_states(&zone, &persistent),
            )));
        }
        metrics::counter!(metric::INPUTS_MISSING).increment(u64::from(out.inputs_missed));
        stats.inputs_missed.fetch_add(u64::from(out.inputs_missed), Ordering::Relaxed);
        for (player, snapshot) in out.snapshots {
            if let Some((sink, _, _)) = players.get(&player) {
                metrics::counter!(metric::SNAPSHOT_BYTES).increment(snapshot.updates.len() as u64);
                // Snapshots fit a datagram by construction (budget cap, bounded removals). A send
                // can still fail on a closing connection; the player's task reports the end.
                if let Ok(n) = sink.send_datagram(&Message::Snapshot(snapshot)) {
                    *bytes_sent.entry(player).or_default() += n as u64;
                }
            }
        }
        // Inputs applied this tick are acknowledged by the snapshots just queued.
        if !out.inputs_arrived.is_empty() {
            let now_us = epoch.elapsed().as_micros() as u64;
            stats.record_input_acks(out.inputs_arrived.iter().map(|a| now_us.saturating_sub(*a) as f64 / 1e3));
        }
        for (player, event) in out.events {
            if let Some((_, events, _)) = players.get(&player)
                && events.try_send(event).is_err()
            {
                metrics::counter!(metric::EVENTS_DROPPED).increment(1);
            }
        }
        if zone.sim().tick().0.is_multiple_of(ticks_per_s) {
            let sim = zone.sim();
            let entities = sim.characters().count() + sim.crates().count() + sim.projectiles().count();
            metrics::gauge!(metric::ENTITIES).set(entities as f64);
            bytes_sent.retain(|p, _| players.contains_key(p));
            for sent in bytes_sent.values_mut() {
                metrics::histogram!(metric::CLIENT_DOWN_BYTES_PER_S).record(*sent as f64);
                *sent = 0;
            }
        }
        let took = started.elapsed();
        metrics::histogram!(metric::TICK_MS).record(took.as_secs_f64() * 1e3);
        metrics::gauge!(metric::PLAYERS).set(players.len() as f64);
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = stats.tick_ms.lock()
            && samples.len() < TICK_SAMPLES_MAX
        {
            samples.push(took.as_secs_f32() * 1e3);
        }
        stats.players.store(players.len() as u64, Ordering::Relaxed);
        if took.as_secs_f32() > period {
            stats.overruns.fetch_add(1, Ordering::Relaxed);
        }
    }
    acceptor.abort();
    // A last checkpoint on the way out.
    if let Some(persister) = persister {
        checkpoint_tx.send_replace(Some((Instant::now(), crate_states(zone.sim()), player_states(&zone, &persistent))));
        drop(checkpoint_tx);
        drop(departure_tx);
        let _ = persister.await;
    }
    for (sink, _, _) in players.values() {
        sink.refuse(RefuseCode::Unavailable, "the zone is shutting down").await;
    }
}
