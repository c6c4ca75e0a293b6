//! Cheap bots: players that speak the real protocol over real QUIC (each its own connection:
//! login, inputs with redundancy, snapshot acknowledgements, pacing, one chat line, shots)
//! without prediction (pwn-client `[game-14]`), driven many at a time by one task.
//!
//! A full bot is a `pwn_client::Client`: two reader tasks and a timer of its own, woken for
//! every datagram, and a predicted world. Here one driver task wakes once per tick for all of
//! its bots; each bot's datagrams and control stream are read without waiting (what arrived
//! since the last tick), handed to its `GameClient` core, which decodes one snapshot in
//! `BLIND_DECODE_EVERY_TICKS` and reads every snapshot's header, and its inputs go out. So a
//! bot costs a few microseconds a tick, and one core drives thousands.

use crate::scenario::Mover;
use crate::swarm::{BotResult, Progress, SwarmConfig, Tally};
use pwn_client::{Frame, GameClient, Placed};
use pwn_net::{ConnError, ConnTx, DatagramRx, StreamRx};
use pwn_proto::{ChatChannel, ChatSend, Message};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages read from one bot's connection per tick, at most (a bot never waits on its
/// connection, so this bounds one bot's share of a tick).
pub const READS_PER_TICK_MAX: usize = 64;

/// Polls `f` once without a waker: its output if it is ready now. The driver polls every bot
/// every tick, so nothing needs waking.
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// One cheap bot on its connection.
pub(crate) struct CheapBot {
    result: BotResult,
    core: GameClient,
    tx: ConnTx,
    rx: StreamRx,
    datagrams: DatagramRx,
    mover: Mover,
    tally: Tally,
    frame: Frame,
    ended: Option<String>,
}

impl CheapBot {
    /// A bot just placed.
    pub(crate) fn new(mut result: BotResult, placed: Placed, cfg: &SwarmConfig, swarm_started: Instant) -> Self {
        let Placed { tx, rx, datagrams, me, .. } = placed;
        let mut core = GameClient::new(cfg.world.clone(), cfg.sim.clone(), me);
        core.mark_placed();
        core.set_headless(true);
        core.set_predict(false);
        result.joined = true;
        let seed = cfg.seed ^ (result.index as u64) << 20;
        let behaviour = cfg.scenario.for_bot(result.index);
        let tally = Tally::new(cfg, behaviour, core.counters(), false, swarm_started);
        Self {
            mover: Mover::new(behaviour, seed, cfg.world.xz_bounds(), &cfg.world.spawn_points),
            result,
            core,
            tx,
            rx,
            datagrams,
            tally,
            frame: Frame::default(),
            ended: None,
        }
    }

    /// Reads what arrived since the last tick into the core, `dt_s` after the last update.
    fn read(&mut self, dt_s: f32) {
        // Read once a tick, a message arrived at some time since the last update, on the core's
        // clock between `now_s()` and `now_s() + dt_s`: stamped at the middle (on average
        // right). Stamped at the start, an input acknowledged by the first snapshot read after
        // it was sent would count as acknowledged in no time at all.
        let now_s = self.core.now_s() + 0.5 * f64::from(dt_s.max(0.0));
        for _ in 0..READS_PER_TICK_MAX {
            match ready_now(self.datagrams.recv()) {
                Some(Ok(m)) => self.core.on_message(now_s, m),
                Some(Err(e)) => return self.end(e.to_string()),
                None => break,
            }
        }
        for _ in 0..READS_PER_TICK_MAX {
            match ready_now(self.rx.recv()) {
                Some(Ok(Some(Message::Refused(r)))) => {
                    return self.end(format!("refused ({:?}): {}", r.code, r.message));
                }
                Some(Ok(Some(m))) => self.core.on_message(now_s, m),
                Some(Ok(None)) => return self.end("the server closed the connection".into()),
                Some(Err(e)) => return self.end(e.to_string()),
                None => break,
            }
        }
    }

    fn end(&mut self, why: String) {
        self.ended.get_or_insert(why);
    }

    /// One tick of play; false once the bot is done (its time played, or its connection
    /// ended).
    fn tick(&mut self, dt_s: f32, cfg: &SwarmConfig, progress: &Progress) -> bool {
        self.read(dt_s);
        self.mover.set_clock_s(self.tally.swarm_s());
        let intent = self.mover.intent(&self.frame);
        self.frame = self.core.update(dt_s, &intent);
        for m in self.core.drain_outbox() {
            // A full datagram queue drops the oldest (counted by pwn-net); a closed connection
            // shows on the next read.
            let _ = self.tx.send_datagram(&m);
        }
        let stats = self.tx.stats();
        self.tally.updated(
            cfg,
            &mut self.result,
            &self.frame,
            self.core.counters(),
            || stats.bytes_received(),
            progress,
        );
        if self.tally.chat_due() {
            let tx = self.tx.clone();
            let text = format!("hello from bot {}", self.result.index);
            tokio::spawn(async move {
                let _: Result<(), ConnError> =
                    tx.send(&Message::Chat(ChatSend { channel: ChatChannel::Proximity, text })).await;
            });
        }
        if let Some(why) = &self.ended {
            self.tally.failed(&mut self.result, why, progress);
            return false;
        }
        !self.tally.done(cfg)
    }

    /// The bot's result; its connection is finished in the background.
    fn finish(mut self) -> BotResult {
        let mut counters = self.core.counters().clone();
        counters.bytes_in = self.tx.stats().bytes_received();
        counters.bytes_out = self.tx.stats().bytes_sent();
        self.tally.finish(&mut self.result, counters);
        let tx = self.tx;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.finish()).await;
        });
        self.result
    }
}

/// Drives every cheap bot that `joined` delivers, one tick for all at the simulation's rate,
/// until the channel is closed and every bot is done; returns their results (unordered).
pub(crate) async fn drive(
    cfg: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    mut joined: mpsc::Receiver<CheapBot>,
) -> Vec<BotResult> {
    let tick = Duration::from_secs_f32(cfg.sim.dt_s());
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bots: Vec<CheapBot> = Vec::new();
    let mut done = Vec::new();
    let mut open = true;
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            bot = joined.recv(), if open => {
                match bot {
                    Some(bot) => {
                        progress.playing.fetch_add(1, Ordering::Relaxed);
                        bots.push(bot);
                    }
                    None => open = false,
                }
                continue;
            }
        }
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f32();
        last = now;
        let mut i = 0;
        while i < bots.len() {
            if bots[i].tick(dt, &cfg, &progress) {
                i += 1;
            } else {
                progress.playing.fetch_sub(1, Ordering::Relaxed);
                done.push(bots.swap_remove(i).finish());
            }
        }
        if !open && bots.is_empty() {
            return done;
        }
    }
}
