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
    /// Joins started per second (a login storm starts them faster, `Scenario::joins_per_s`).
    pub joins_per_s: f64,
    /// Each bot's datagrams go through this link (latency, jitter, loss), if set.
    pub link: Option<pwn_net::conditioner::LinkProfile>,
    /// Log in through a gateway (bot `i` is account `bot-i`, created on its first run);
    /// otherwise connect to a zone that places players directly.
    pub login: bool,
    /// This process runs only the bots whose index is `k` modulo `n` (`Some((k, n))`: one of
    /// `n` worker processes reporting as one swarm).
    pub shard: Option<(usize, usize)>,
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
    /// What bots measured, second by second, merged over bots.
    pub timeline: std::sync::Mutex<Timeline>,
}

/// Points a timeline keeps at most: longer runs merge several seconds into each point.
pub const TIMELINE_POINTS_MAX: usize = 3_600;

/// What bots measured over the run, one point per `seconds_per_point` from the swarm's start,
/// merged over bots, so that the report can draw percentiles over time.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// Seconds each point covers.
    pub seconds_per_point: u64,
    /// Input acknowledgement (ticks), every bot.
    pub input_ack_ticks: Vec<pwn_client::Histogram>,
    /// Prediction error (metres, 0 when exact), predicting bots.
    pub prediction_error_m: Vec<pwn_client::Histogram>,
    /// Each bot's payload received in the second, kilobits per second.
    pub down_kbps: Vec<pwn_client::Histogram>,
}

impl Timeline {
    /// A timeline for a run of `duration` (plus joining), within [`TIMELINE_POINTS_MAX`].
    pub fn for_run(duration: Duration) -> Self {
        let seconds = duration.as_secs() + 60;
        Self { seconds_per_point: seconds.div_ceil(TIMELINE_POINTS_MAX as u64).max(1), ..Self::default() }
    }

    fn point<'a>(
        v: &'a mut Vec<pwn_client::Histogram>,
        at: usize,
        empty: &pwn_client::Histogram,
    ) -> &'a mut pwn_client::Histogram {
        if v.len() <= at {
            v.resize(at + 1, empty.clone());
        }
        &mut v[at]
    }

    /// Adds another timeline of the same run (another worker's), point by point.
    pub fn merge(&mut self, other: &Timeline) {
        if self.seconds_per_point == 0 {
            self.seconds_per_point = other.seconds_per_point;
        }
        let empty = ClientCounters::default();
        for (mine, theirs, blank) in [
            (&mut self.input_ack_ticks, &other.input_ack_ticks, empty.input_ack_ticks.clone()),
            (&mut self.prediction_error_m, &other.prediction_error_m, empty.prediction_error_m.clone()),
            (&mut self.down_kbps, &other.down_kbps, kbps_histogram()),
        ] {
            for (at, h) in theirs.iter().enumerate().take(TIMELINE_POINTS_MAX) {
                Self::point(mine, at, &blank).merge(h);
            }
        }
    }

    /// Adds one bot's second, `at_s` seconds after the swarm started.
    fn record(&mut self, at_s: u64, ack: &pwn_client::Histogram, error: Option<&pwn_client::Histogram>, kbps: f64) {
        let at = ((at_s / self.seconds_per_point.max(1)) as usize).min(TIMELINE_POINTS_MAX - 1);
        let empty = ClientCounters::default();
        Self::point(&mut self.input_ack_ticks, at, &empty.input_ack_ticks).merge(ack);
        if let Some(e) = error {
            Self::point(&mut self.prediction_error_m, at, &empty.prediction_error_m).merge(e);
        }
        Self::point(&mut self.down_kbps, at, &kbps_histogram()).record(kbps);
    }
}

/// The shape of a bandwidth histogram: 1 kbps buckets up to 10 Mbps.
pub fn kbps_histogram() -> pwn_client::Histogram {
    pwn_client::Histogram::new(1.0, 10_000)
}

/// One bot's outcome.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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

/// What every bot keeps track of while it plays, predicting or not: per-second series, the
/// farthest it got, input acknowledgement per phase, its chat line.
pub(crate) struct Tally {
    started: Instant,
    origin: Option<glam::Vec3>,
    /// Seconds between chat lines (`None`: one line only), and when the next is due.
    chat_period_s: Option<f64>,
    next_chat_s: f64,
    second: u64,
    last_bytes: u64,
    last_corrections: u64,
    error_max_this_second: f32,
    ticks_per_s: u64,
    updates: u64,
    phase_now: usize,
    ack_at_phase_start: pwn_client::Histogram,
    /// The counters at the last second's end, for the timeline.
    ack_at_second_start: pwn_client::Histogram,
    error_at_second_start: Option<pwn_client::Histogram>,
    /// When the swarm started (the timeline's origin).
    swarm_started: Instant,
}

impl Tally {
    pub(crate) fn new(
        cfg: &SwarmConfig,
        behaviour: Scenario,
        counters: &ClientCounters,
        predicting: bool,
        swarm_started: Instant,
    ) -> Self {
        Self {
            chat_period_s: behaviour.chat_period_s(),
            next_chat_s: 1.0,
            ack_at_second_start: counters.input_ack_ticks.clone(),
            error_at_second_start: predicting.then(|| counters.prediction_error_m.clone()),
            swarm_started,
            started: Instant::now(),
            origin: None,
            second: 1,
            last_bytes: 0,
            last_corrections: 0,
            error_max_this_second: 0.0,
            ticks_per_s: u64::from(cfg.sim.tick_hz.max(1)),
            updates: 0,
            phase_now: phase(cfg),
            ack_at_phase_start: counters.input_ack_ticks.clone(),
        }
    }

    /// Whether the bot has played its time.
    pub(crate) fn done(&self, cfg: &SwarmConfig) -> bool {
        self.started.elapsed() >= cfg.duration
    }

    /// Whether it is time for the bot's chat line: once, a second in, or every period of a
    /// chat storm.
    pub(crate) fn chat_due(&mut self) -> bool {
        let played_s = self.started.elapsed().as_secs_f64();
        let due = played_s >= self.next_chat_s;
        if due {
            self.next_chat_s = self.chat_period_s.map_or(f64::INFINITY, |p| played_s + p);
        }
        due
    }

    /// Seconds this bot has played.
    pub(crate) fn played_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Seconds since the swarm started.
    pub(crate) fn swarm_s(&self) -> f64 {
        self.swarm_started.elapsed().as_secs_f64()
    }

    /// After one update of the bot: `counters` are its core's, `bytes_in` its connection's.
    pub(crate) fn updated(
        &mut self,
        cfg: &SwarmConfig,
        result: &mut BotResult,
        frame: &Frame,
        counters: &ClientCounters,
        bytes_in: impl FnOnce() -> u64,
        progress: &Progress,
    ) {
        let p = phase(cfg);
        if p != self.phase_now {
            close_phase(result, self.phase_now, &counters.input_ack_ticks, &self.ack_at_phase_start);
            self.ack_at_phase_start = counters.input_ack_ticks.clone();
            self.phase_now = p;
        }
        self.updates += 1;
        if let Some(me) = frame.me {
            let o = *self.origin.get_or_insert(me.position_m);
            let d = me.position_m - o;
            result.moved_m = result.moved_m.max(glam::Vec2::new(d.x, d.z).length());
        }
        if counters.corrections > self.last_corrections {
            progress.corrections.fetch_add(counters.corrections - self.last_corrections, Ordering::Relaxed);
            self.last_corrections = counters.corrections;
            self.error_max_this_second = self.error_max_this_second.max(counters.prediction_error_m.max() as f32);
        }
        progress.inputs.fetch_add(1, Ordering::Relaxed);
        if self.updates >= self.second * self.ticks_per_s {
            self.second += 1;
            let bytes = bytes_in();
            // A new connection's count starts over; never a wrapped difference.
            let received = bytes.saturating_sub(self.last_bytes);
            result.down_bytes_per_s.push(received);
            let kbps = received as f64 * 8.0 / 1e3;
            self.last_bytes = bytes;
            let ack = counters.input_ack_ticks.since(&self.ack_at_second_start);
            let error = self.error_at_second_start.as_ref().map(|e| counters.prediction_error_m.since(e));
            if let Ok(mut t) = progress.timeline.lock() {
                t.record(self.swarm_started.elapsed().as_secs(), &ack, error.as_ref(), kbps);
            }
            self.ack_at_second_start = counters.input_ack_ticks.clone();
            if error.is_some() {
                self.error_at_second_start = Some(counters.prediction_error_m.clone());
            }
            result.error_m_per_s.push(self.error_max_this_second);
            self.error_max_this_second = 0.0;
            if let Some(me) = frame.me
                && result.trail.len() < TRAIL_POINTS_MAX
            {
                result.trail.push([me.position_m.x, me.position_m.z]);
            }
        }
    }

    /// The bot's connection ended early.
    pub(crate) fn failed(&self, result: &mut BotResult, why: &str, progress: &Progress) {
        result.failure = Some(why.to_owned());
        result.failure_phase = Some(self.phase_now);
        progress.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// The end of the bot's play: its time and final counters.
    pub(crate) fn finish(&self, result: &mut BotResult, counters: ClientCounters) {
        result.played_s = self.started.elapsed().as_secs_f64();
        close_phase(result, self.phase_now, &counters.input_ack_ticks, &self.ack_at_phase_start);
        result.counters = counters;
    }
}

fn close_phase(result: &mut BotResult, now: usize, ack: &pwn_client::Histogram, start: &pwn_client::Histogram) {
    if result.input_ack_ticks_by_phase.len() <= now {
        result.input_ack_ticks_by_phase.resize(now + 1, pwn_client::Histogram::new(1.0, 1));
    }
    result.input_ack_ticks_by_phase[now] = ack.since(start);
}

fn phase(cfg: &SwarmConfig) -> usize {
    cfg.phase.as_ref().map_or(0, |p| p.load(Ordering::Relaxed))
}

impl BotResult {
    /// Notes that the bot could not join (counted as a disconnect, in the phase it happened).
    fn join_failed(&mut self, e: &pwn_client::JoinError, cfg: &SwarmConfig, progress: &Progress) {
        progress.disconnects.fetch_add(1, Ordering::Relaxed);
        self.failure = Some(format!("join: {e}"));
        self.failure_phase = Some(phase(cfg));
    }

    /// A bot that has not joined yet.
    pub(crate) fn new(index: usize, cfg: &SwarmConfig) -> Self {
        Self {
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
        }
    }
}

/// The options bot `index` joins with.
pub(crate) fn join_options(index: usize, cfg: &SwarmConfig) -> JoinOptions {
    JoinOptions {
        timeout: Duration::from_secs(10),
        link: cfg.link,
        link_seed: cfg.seed ^ index as u64,
        login: cfg.login.then(|| {
            Login::LoginOrRegister(pwn_proto::Credentials {
                username: format!("bot-{index}"),
                password: BOT_PASSWORD.into(),
            })
        }),
    }
}

/// Connects bot `index`, coming back when a busy gateway asks it to, like any client would.
pub(crate) async fn connect_once(
    index: usize,
    net: &NetClient,
    cfg: &SwarmConfig,
) -> Result<pwn_net::Conn, pwn_client::JoinError> {
    let hello = pwn_net::ClientHello::new(
        pwn_proto::PeerRole::Client,
        pwn_sim::build_digest(&cfg.sim),
        format!("pwn-bot-{index}"),
    );
    Ok(net.connect(cfg.addr, &cfg.server_name, &hello).await?)
}

/// Joins bot `index` (connects, logs in, waits to be placed), retrying while a busy gateway
/// says it is rate limited (a login storm of a few hundred bots keeps its hashing pool full
/// for several seconds on a small machine).
pub(crate) async fn join_placed(
    index: usize,
    net: &NetClient,
    cfg: &SwarmConfig,
) -> Result<pwn_client::Placed, pwn_client::JoinError> {
    let options = join_options(index, cfg);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let placed = match connect_once(index, net, cfg).await {
            Ok(conn) => pwn_client::place(conn, &options).await,
            Err(e) => Err(e),
        };
        match placed {
            Err(pwn_client::JoinError::Auth(pwn_proto::AuthError::RateLimited, _)) if attempt < JOIN_ATTEMPTS_MAX => {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt)).min(JOIN_RETRY_PAUSE_MAX)).await;
            }
            other => return other,
        }
    }
}

async fn run_bot(
    index: usize,
    net: Arc<NetClient>,
    cfg: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    start_at: tokio::time::Instant,
    swarm_started: Instant,
) -> BotResult {
    tokio::time::sleep_until(start_at).await;
    let mut result = BotResult::new(index, &cfg);
    let joined = match join_placed(index, &net, &cfg).await {
        Ok(placed) => Ok(Client::started(placed, cfg.world.clone(), cfg.sim.clone(), &join_options(index, &cfg))),
        Err(e) => Err(e),
    };
    let mut client = match joined {
        Ok(c) => c,
        Err(e) => {
            result.join_failed(&e, &cfg, &progress);
            return result;
        }
    };
    result.joined = true;
    client.set_headless(true);
    client.set_predict(result.predicting);
    progress.playing.fetch_add(1, Ordering::Relaxed);
    let behaviour = cfg.scenario.for_bot(index);
    let mut mover =
        Mover::new(behaviour, cfg.seed ^ (index as u64) << 20, cfg.world.xz_bounds(), &cfg.world.spawn_points)
            .with_builders_role(crate::builders::builds(index), &cfg.world);
    let mut builder = (behaviour == Scenario::Builders && crate::builders::builds(index))
        .then(|| crate::builders::Builder::new(index, &cfg.world))
        .flatten();
    let tick = Duration::from_secs_f32(cfg.sim.dt_s());
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tally = Tally::new(&cfg, behaviour, client.core().counters(), result.predicting, swarm_started);
    let mut last = Instant::now();
    let mut frame = Frame::default();
    while !tally.done(&cfg) {
        every.tick().await;
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f32();
        last = now;
        mover.set_clock_s(tally.swarm_s());
        let intent: Intent = mover.intent(&frame);
        frame = client.update(dt, &intent);
        tally.updated(&cfg, &mut result, &frame, client.core().counters(), || client.bytes_in(), &progress);
        if tally.chat_due() {
            let _ = client.chat(ChatChannel::Proximity, format!("hello from bot {index}")).await;
        }
        if let Some(b) = builder.as_mut()
            && let Some(op) = b.next(&frame, tally.played_s())
            && let Ok(request) = client.edit(op).await
        {
            b.sent(request);
        }
        if let Some(why) = client.ended() {
            tally.failed(&mut result, why, &progress);
            break;
        }
    }
    tally.finish(&mut result, client.counters());
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

/// Bots that share one source address. A gateway admits a bounded number of connections from
/// one address (64 by default, against floods); players come from many, so on loopback the
/// swarm spreads its bots over 127.0.0.1, 127.0.0.2, ... this many to each.
pub const BOTS_PER_ADDRESS: usize = 48;
/// Source addresses a swarm uses at most (127.0.0.1 to 127.0.0.250).
pub const SWARM_ADDRESSES_MAX: usize = 250;

/// The swarm's QUIC endpoints: one per source address its bots need (one when the world is
/// not on IPv4 loopback).
fn swarm_endpoints(cfg: &SwarmConfig) -> std::io::Result<Vec<Arc<NetClient>>> {
    let spread = match cfg.addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() => {
            cfg.count.div_ceil(BOTS_PER_ADDRESS).clamp(1, SWARM_ADDRESSES_MAX)
        }
        _ => 1,
    };
    let per_endpoint = if spread == 1 { cfg.count } else { BOTS_PER_ADDRESS };
    let transport = TransportConfig { connections_max: per_endpoint.max(1) + 16, ..TransportConfig::default() };
    (0..spread)
        .map(|k| {
            let bind = match cfg.addr.ip() {
                std::net::IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                std::net::IpAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1 + k as u8], 0)),
            };
            NetClient::new(bind, &cfg.ca_pem, &transport)
                .map(Arc::new)
                .map_err(|e| std::io::Error::other(format!("cannot open a bot endpoint on {bind}: {e}")))
        })
        .collect()
}

/// Cheap bots joined and not yet taken by their driver.
const JOINED_QUEUE_MAX: usize = 1_024;

/// Joins cheap bot `index` and hands it to the driver; its result if it could not join.
async fn join_cheap(
    index: usize,
    net: Arc<NetClient>,
    cfg: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    start_at: tokio::time::Instant,
    swarm_started: Instant,
    driver: tokio::sync::mpsc::Sender<crate::cheap::CheapBot>,
) -> Option<BotResult> {
    tokio::time::sleep_until(start_at).await;
    let mut result = BotResult::new(index, &cfg);
    match join_placed(index, &net, &cfg).await {
        Ok(placed) => {
            // The driver outlives every join task; if it is gone the swarm is ending anyway.
            let _ = driver.send(crate::cheap::CheapBot::new(result, placed, &cfg, swarm_started)).await;
            None
        }
        Err(e) => {
            result.join_failed(&e, &cfg, &progress);
            Some(result)
        }
    }
}

/// Runs the swarm to the end; `progress` can be read meanwhile. Results are in bot order.
/// Full bots each run as their own task; cheap ones are driven together by one.
pub async fn run_swarm(cfg: SwarmConfig, progress: Arc<Progress>) -> std::io::Result<Vec<BotResult>> {
    let endpoints = swarm_endpoints(&cfg)?;
    let cfg = Arc::new(cfg);
    let swarm_started = Instant::now();
    if let Ok(mut t) = progress.timeline.lock() {
        // Joining takes count / rate seconds before the last bot's play starts.
        let joins_s = cfg.count as f64 / cfg.scenario.joins_per_s(cfg.joins_per_s).max(1.0);
        *t = Timeline::for_run(cfg.duration + Duration::from_secs_f64(joins_s.min(86_400.0)));
    }
    let (to_driver, joined) = tokio::sync::mpsc::channel(JOINED_QUEUE_MAX);
    let driver = tokio::spawn(crate::cheap::drive(cfg.clone(), progress.clone(), joined));
    let t0 = tokio::time::Instant::now();
    let mut full = Vec::new();
    let mut cheap = Vec::new();
    let mine = |i: usize| cfg.shard.is_none_or(|(k, n)| i % n.max(1) == k);
    for i in (0..cfg.count).filter(|i| mine(*i)) {
        let start_at = t0 + Duration::from_secs_f64(i as f64 / cfg.scenario.joins_per_s(cfg.joins_per_s).max(1.0));
        let net = endpoints[(i / BOTS_PER_ADDRESS).min(endpoints.len() - 1)].clone();
        let (cfg_i, progress) = (cfg.clone(), progress.clone());
        if predicts(i, cfg.count, cfg.predicting) {
            full.push(tokio::spawn(run_bot(i, net, cfg_i, progress, start_at, swarm_started)));
        } else {
            let driver = to_driver.clone();
            cheap.push(tokio::spawn(join_cheap(i, net, cfg_i, progress, start_at, swarm_started, driver)));
        }
    }
    drop(to_driver);
    let failed = |e: tokio::task::JoinError| std::io::Error::other(format!("a bot task failed: {e}"));
    let mut results = Vec::with_capacity(cfg.count);
    for t in full {
        results.push(t.await.map_err(failed)?);
    }
    for t in cheap {
        results.extend(t.await.map_err(failed)?);
    }
    results.extend(driver.await.map_err(failed)?);
    results.sort_by_key(|r| r.index);
    Ok(results)
}
