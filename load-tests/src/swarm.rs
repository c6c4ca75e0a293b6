//! A swarm of headless bots in one process: each a full `pwn_client::Client` (prediction on)
//! over its own QUIC connection from one shared client endpoint, driven at the simulation's
//! tick rate by a timer. Joins are staggered so the server's handshakes do not all land at
//! once; each bot says one proximity chat line after a second.

use crate::scenario::{Mover, Scenario};
use pwn_client::{Client, ClientCounters, Frame, Intent, JoinOptions, Login};
use pwn_net::{NetClient, TransportConfig};
use pwn_proto::ChatChannel;
use pwn_sim::{SimConfig, WorldDesc};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Joins tried when the gateway says it is busy (a login storm of a few hundred bots keeps
/// its hashing pool full for several seconds on a small machine).
const JOIN_ATTEMPTS_MAX: u32 = 40;
/// Longest pause between two tries.
const JOIN_RETRY_PAUSE_MAX: Duration = Duration::from_secs(2);
/// Trail points kept per bot (one a second).
pub const TRAIL_POINTS_MAX: usize = 3_600;

/// What a swarm is to do.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Where the bots connect.
    pub addr: SocketAddr,
    /// The name the server's certificate carries.
    pub server_name: String,
    /// The CA the server's certificate is checked against (PEM).
    pub ca_pem: String,
    /// The world (must be the server's).
    pub world: WorldDesc,
    /// The simulation configuration (must be the server's).
    pub sim: SimConfig,
    /// Bots.
    pub count: usize,
    /// How many of them predict (full clients that measure what players feel: prediction
    /// error, corrections); the rest are cheap bots that play the same protocol without
    /// prediction (pwn-client `[game-14]`). Spread evenly over the swarm's indices.
    pub predicting: usize,
    /// How long each bot plays once joined.
    pub duration: Duration,
    /// How they move.
    pub scenario: Scenario,
    /// Seed of the bots' movement.
    pub seed: u64,
    /// Joins started per second.
    pub joins_per_s: f64,
    /// Each bot's datagrams go through this link (latency, jitter, loss), if set.
    pub link: Option<pwn_net::conditioner::LinkProfile>,
    /// Log in through a gateway (bot `i` is account `bot-i`, created on its first run);
    /// otherwise connect to a zone that places players directly.
    pub login: bool,
    /// A phase number the caller moves on (quiet, under attack, after, ...): each bot then
    /// also keeps its input acknowledgement per phase, and notes the phase it failed in.
    pub phase: Option<Arc<AtomicUsize>>,
}

/// The password of bot accounts: load-test accounts only, never for real players.
pub const BOT_PASSWORD: &str = "pwn-bot-load-test";

/// Live counters for a progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bots playing now.
    pub playing: AtomicU64,
    /// Bots whose connection ended early, or that could not join.
    pub disconnects: AtomicU64,
    /// Inputs sent so far, all bots.
    pub inputs: AtomicU64,
    /// Corrections so far, all bots.
    pub corrections: AtomicU64,
}

/// One bot's outcome.
#[derive(Clone, Debug)]
pub struct BotResult {
    /// Its index in the swarm.
    pub index: usize,
    /// Whether it predicted (a full client) or was a cheap bot.
    pub predicting: bool,
    /// Whether it joined.
    pub joined: bool,
    /// Why it ended early (join failure or disconnect), if it did.
    pub failure: Option<String>,
    /// Its counters at the end.
    pub counters: ClientCounters,
    /// Seconds it played.
    pub played_s: f64,
    /// Straight-line distance from where it started to the farthest point reached.
    pub moved_m: f32,
    /// Its position once a second (x, z).
    pub trail: Vec<[f32; 2]>,
    /// Payload bytes received in each second of play.
    pub down_bytes_per_s: Vec<u64>,
    /// Largest prediction error seen in each second of play, metres.
    pub error_m_per_s: Vec<f32>,
    /// Input acknowledgement (ticks) in each phase of [`SwarmConfig::phase`] (index = phase).
    pub input_ack_ticks_by_phase: Vec<pwn_client::Histogram>,
    /// The phase it ended early in, if it did.
    pub failure_phase: Option<usize>,
}

async fn run_bot(
    index: usize,
    net: Arc<NetClient>,
    cfg: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    start_at: tokio::time::Instant,
) -> BotResult {
    tokio::time::sleep_until(start_at).await;
    let mut result = BotResult {
        index,
        predicting: predicts(index, cfg.count, cfg.predicting),
        joined: false,
        failure: None,
        counters: ClientCounters::default(),
        played_s: 0.0,
        moved_m: 0.0,
        trail: Vec::new(),
        down_bytes_per_s: Vec::new(),
        error_m_per_s: Vec::new(),
        input_ack_ticks_by_phase: Vec::new(),
        failure_phase: None,
    };
    let phase = || cfg.phase.as_ref().map_or(0, |p| p.load(Ordering::Relaxed));
    let agent = format!("pwn-bot-{index}");
    let mut attempt = 0u32;
    let joined = loop {
        attempt += 1;
        let joined = Client::connect(
            &net,
            cfg.addr,
            &cfg.server_name,
            cfg.world.clone(),
            cfg.sim.clone(),
            &agent,
            &JoinOptions {
                timeout: Duration::from_secs(10),
                link: cfg.link,
                link_seed: cfg.seed ^ index as u64,
                login: cfg.login.then(|| {
                    Login::LoginOrRegister(pwn_proto::Credentials {
                        username: format!("bot-{index}"),
                        password: BOT_PASSWORD.into(),
                    })
                }),
            },
        )
        .await;
        // A busy gateway asks bots to come back, like any client would.
        match joined {
            Err(pwn_client::JoinError::Auth(pwn_proto::AuthError::RateLimited, _)) if attempt < JOIN_ATTEMPTS_MAX => {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt)).min(JOIN_RETRY_PAUSE_MAX)).await;
            }
            other => break other,
        }
    };
    let mut client = match joined {
        Ok(c) => c,
        Err(e) => {
            progress.disconnects.fetch_add(1, Ordering::Relaxed);
            result.failure = Some(format!("join: {e}"));
            result.failure_phase = Some(phase());
            return result;
        }
    };
    result.joined = true;
    client.set_headless(true);
    client.set_predict(result.predicting);
    progress.playing.fetch_add(1, Ordering::Relaxed);
    let mut mover =
        Mover::new(cfg.scenario, cfg.seed ^ (index as u64) << 20, cfg.world.xz_bounds(), &cfg.world.spawn_points);
    let tick = Duration::from_secs_f32(cfg.sim.dt_s());
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut last = started;
    let mut frame = Frame::default();
    let mut origin = None;
    let mut chatted = false;
    let mut second = 1u64;
    let mut last_bytes = 0u64;
    let mut last_corrections = 0u64;
    let mut error_max_this_second = 0.0f32;
    let ticks_per_s = u64::from(cfg.sim.tick_hz.max(1));
    let mut updates = 0u64;
    let mut phase_now = phase();
    let mut ack_at_phase_start = client.counters().input_ack_ticks.clone();
    let close_phase =
        |result: &mut BotResult, now: usize, ack: &pwn_client::Histogram, start: &pwn_client::Histogram| {
            if result.input_ack_ticks_by_phase.len() <= now {
                result.input_ack_ticks_by_phase.resize(now + 1, pwn_client::Histogram::new(1.0, 1));
            }
            result.input_ack_ticks_by_phase[now] = ack.since(start);
        };
    while started.elapsed() < cfg.duration {
        every.tick().await;
        let p = phase();
        if p != phase_now {
            let ack = client.counters().input_ack_ticks.clone();
            close_phase(&mut result, phase_now, &ack, &ack_at_phase_start);
            ack_at_phase_start = ack;
            phase_now = p;
        }
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f32();
        last = now;
        let intent: Intent = mover.intent(&frame);
        frame = client.update(dt, &intent);
        updates += 1;
        if let Some(me) = frame.me {
            let o = *origin.get_or_insert(me.position_m);
            let d = me.position_m - o;
            result.moved_m = result.moved_m.max(glam::Vec2::new(d.x, d.z).length());
        }
        let c = client.core().counters();
        if c.corrections > last_corrections {
            progress.corrections.fetch_add(c.corrections - last_corrections, Ordering::Relaxed);
            last_corrections = c.corrections;
            error_max_this_second = error_max_this_second.max(c.prediction_error_m.max() as f32);
        }
        progress.inputs.fetch_add(1, Ordering::Relaxed);
        if !chatted && started.elapsed() > Duration::from_secs(1) {
            chatted = true;
            let _ = client.chat(ChatChannel::Proximity, format!("hello from bot {index}")).await;
        }
        if updates >= second * ticks_per_s {
            second += 1;
            let counters = client.counters();
            result.down_bytes_per_s.push(counters.bytes_in - last_bytes);
            last_bytes = counters.bytes_in;
            result.error_m_per_s.push(error_max_this_second);
            error_max_this_second = 0.0;
            if let Some(me) = frame.me
                && result.trail.len() < TRAIL_POINTS_MAX
            {
                result.trail.push([me.position_m.x, me.position_m.z]);
            }
        }
        if let Some(why) = client.ended() {
            result.failure = Some(why.to_owned());
            result.failure_phase = Some(phase_now);
            progress.disconnects.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    result.played_s = started.elapsed().as_secs_f64();
    result.counters = client.counters();
    let ack = result.counters.input_ack_ticks.clone();
    close_phase(&mut result, phase_now, &ack, &ack_at_phase_start);
    progress.playing.fetch_sub(1, Ordering::Relaxed);
    client.close().await;
    result
}

/// Whether bot `index` of `count` is one of the `predicting` full clients: exactly that many
/// (all with `predicting >= count`), spread evenly over the indices.
pub fn predicts(index: usize, count: usize, predicting: usize) -> bool {
    let predicting = predicting.min(count) as u128;
    let (i, n) = (index as u128, count.max(1) as u128);
    (i + 1) * predicting / n > i * predicting / n
}

/// Runs the swarm to the end; `progress` can be read meanwhile. Results are in bot order.
pub async fn run_swarm(cfg: SwarmConfig, progress: Arc<Progress>) -> std::io::Result<Vec<BotResult>> {
    let transport = TransportConfig { connections_max: cfg.count.max(1) + 16, ..TransportConfig::default() };
    let net = NetClient::new(SocketAddr::from(([127, 0, 0, 1], 0)), &cfg.ca_pem, &transport)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let net = Arc::new(net);
    let cfg = Arc::new(cfg);
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(cfg.count);
    for i in 0..cfg.count {
        let start_at = t0 + Duration::from_secs_f64(i as f64 / cfg.joins_per_s.max(1.0));
        tasks.push(tokio::spawn(run_bot(i, net.clone(), cfg.clone(), progress.clone(), start_at)));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(r) => results.push(r),
            Err(e) => return Err(std::io::Error::other(format!("a bot task failed: {e}"))),
        }
    }
    Ok(results)
}
