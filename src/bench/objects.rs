//! `pwn bench objects`: world objects and moving platforms, measured from outside.
//!
//! Two parts, one command:
//! 1. The zone's edit worker commits one edit at a time; how many a second it commits on the
//!    embedded store (SQLite, synced), through the same check, commit and apply as `pwn zone`.
//! 2. A local zone (its own process) with the bench world: a raft 30 m square lifting 4 m under
//!    half the spawn points, flat ground under the others. Bots join over QUIC and wander within
//!    1.5 m of where they landed (the same model on the raft and on the ground; a bot stands
//!    still while another is within 1.8 m, since contacts between characters are mispredicted
//!    on any floor); builders among the ground bots place a door each and open and shut it every
//!    half second. Every bot records when it first sees each object state in a snapshot.
//!    Figures: edit latency (an edit sent to the last bot near the object seeing it, near
//!    meaning it had the object in view) in ticks; prediction error p99 and corrections per
//!    minute of riders against ground bots; and, once the builders stop, the object updates the
//!    bots receive while every object is at rest (bytes per object at rest).

use crate::config::PwnConfig;
use crate::demo::start_world;
use anyhow::{Context, bail};
use clap::Args;
use glam::Vec3;
use pwn_client::{Client, Histogram, Intent, JoinOptions};
use pwn_proto::{EditObject, EditOp, EditOutcome, GameEvent};
use pwn_sim::ids::{OBJECT_ID_BASE, PROJECTILE_ID_BASE};
use pwn_sim::quantize::{dequantize_position, quantize_position};
use pwn_sim::{EntityId, Sim, SimConfig, WorldDesc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bench world (spawn points added by [`bench_world`]): a lifting raft 30 m square, and
/// flat ground beside it.
const BENCH_WORLD: &str = r#"
name = "objects-bench"
origin_m = [-256.0, -256.0]
size_m = [512.0, 512.0]
spawn_points = []
[[object_kind]]
name = "door"
half_extents_m = [1.0, 1.5, 0.1]
states = 2
passable_states = [1]
[[object_kind]]
name = "post"
half_extents_m = [0.2, 0.5, 0.2]
[[platform]]
half_extents_m = [15.0, 0.5, 15.0]
path_m = [[0.0, 0.5, 60.0], [0.0, 4.5, 60.0]]
speed_mps = 1.0
pause_s = 2.0
"#;

/// The bench world with its spawn points: a grid of 6 by 6, 5 m apart, over the raft (dropped
/// onto it from above its highest) and as many on the ground, so bots seldom land together.
fn bench_world() -> anyhow::Result<(WorldDesc, String)> {
    let mut points = Vec::new();
    for i in 0..6 {
        for j in 0..6 {
            let (x, z) = (-12.5 + 5.0 * i as f32, -12.5 + 5.0 * j as f32);
            points.push(format!("[{x:.1}, 1.0, {z:.1}]"));
            points.push(format!("[{x:.1}, 7.0, {:.1}]", z + 60.0));
        }
    }
    let text = BENCH_WORLD.replace("spawn_points = []", &format!("spawn_points = [{}]", points.join(", ")));
    Ok((WorldDesc::from_toml(&text)?, text))
}

/// A bot stands still while another is this close (a contact between characters is mispredicted
/// whatever stands under them; the bench compares platforms with ground, not crowds).
const KEEP_APART_M: f32 = 1.8;

const DOOR: u16 = 0;
const POST: u16 = 1;
/// Ticks between a builder's edits.
const EDIT_EVERY_TICKS: u64 = 15;
/// How far from where it landed a bot wanders.
const WANDER_M: f32 = 1.5;

/// Flags of `pwn bench objects`.
#[derive(Args, Debug)]
pub struct BenchObjectsArgs {
    /// Bots in the live part (half land on the raft, half on the ground, as spawn points fall).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(2..=500))]
    bots: u32,
    /// Builders among the ground bots.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    builders: u32,
    /// Seconds of building and riding measured.
    #[arg(long, default_value_t = 30.0)]
    measure_s: f64,
    /// Seconds everything rests after the builders stop, for the bytes at rest.
    #[arg(long, default_value_t = 5.0)]
    rest_s: f64,
    /// Edits committed in the store part.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    commits: u32,
    /// Print the figures as one JSON line at the end.
    #[arg(long)]
    json: bool,
}

/// Commits per second of the zone's edit path on SQLite (check, commit, apply; one at a time
/// as the worker does): a door opened and shut, and posts placed and removed, alternately.
fn store_part(commits: u32, world: &WorldDesc, sim: &SimConfig) -> anyhow::Result<f64> {
    use pwn_store::keys::CellKey;
    use pwn_zone_node::objects::{WholeWorld, commit};
    let dir = tempfile::tempdir()?;
    let store = pwn_store::Store::new(Arc::new(pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite"))?));
    let lease = pwn_zone_node::persist::acquire_lease(&store, CellKey::ROOT, 1)?;
    let serving = WholeWorld { cell: (CellKey::ROOT, lease.epoch) };
    let bounds = pwn_store::objects::Bounds { origin_m: world.origin_m, size_m: world.size_m };
    let mut zone = pwn_zone_node::zone::Zone::new(Sim::new(world.clone(), sim.clone(), 1)?, Default::default());
    let me = EntityId(1);
    // On open ground, away from the raft and the spawn points.
    zone.join_at(me, Some(pwn_sim::CharacterState::spawned_at(Vec3::new(0.0, 1.0, -30.0), sim)))?;
    for _ in 0..30 {
        zone.tick();
    }
    let here = zone.sim().character(me).context("the bench player")?.position_m;
    let mut request = 0u64;
    let mut edit = |zone: &mut pwn_zone_node::zone::Zone, op: EditOp| -> anyhow::Result<u64> {
        request += 1;
        let v = zone
            .check_edit(&serving, me, &EditObject { request, op })
            .map_err(|e| anyhow::anyhow!("the bench edit was refused: {e:?}"))?;
        let done = commit(&store, &v, &bounds);
        let object = zone.finish_edit(&serving, &v, &done);
        done.map_err(|e| anyhow::anyhow!("the bench edit failed: {e:?}"))?;
        Ok(object)
    };
    let at = |dx: f32, y: f32| quantize_position(Vec3::new(here.x + dx, y, here.z + 3.0));
    let door = edit(&mut zone, EditOp::Place { kind: DOOR, position: at(-2.0, 1.5), yaw: 0, state: 0 })?;
    let started = Instant::now();
    let mut post = None;
    for i in 1..commits {
        let op = match (i % 2, post) {
            (0, _) => EditOp::SetState { object: door, state: (i / 2 % 2) as u16 },
            (_, None) => EditOp::Place { kind: POST, position: at(2.0, 0.5), yaw: 0, state: 0 },
            (_, Some(p)) => EditOp::Remove { object: p },
        };
        let id = edit(&mut zone, op)?;
        if let EditOp::Place { .. } = op {
            post = Some(id);
        } else if let EditOp::Remove { .. } = op {
            post = None;
        }
    }
    Ok(f64::from(commits - 1) / started.elapsed().as_secs_f64())
}

/// A bot saw an object in a state: (bot, state, seconds since the start); the state
/// `OUT_OF_VIEW` when the object left its view.
type Sight = (u32, u16, f64);
const OUT_OF_VIEW: u16 = u16::MAX;

/// What the bots share: when each (object, state) was first seen by each bot, and the edits.
#[derive(Default)]
struct Shared {
    /// object -> every change of it some bot saw.
    seen: Mutex<HashMap<u64, Vec<Sight>>>,
    /// Committed edits: (object, state it left, seconds it was sent).
    edits: Mutex<Vec<(u64, u16, f64)>>,
    building: AtomicBool,
    stop: AtomicBool,
}

/// One bot's result.
struct BotResult {
    rider: bool,
    played_s: f64,
    counters: pwn_client::ClientCounters,
    /// Object updates received during the rest window.
    rest_object_updates: u64,
    refused: u64,
}

/// Whether a position is above the raft (its square, whatever its height).
fn on_raft(p: Vec3) -> bool {
    p.x.abs() < 15.0 && (p.z - 60.0).abs() < 15.0 && p.y > 1.0
}

#[allow(clippy::too_many_arguments)]
async fn bot(
    index: u32,
    builder: bool,
    net: Arc<pwn_net::NetClient>,
    addr: std::net::SocketAddr,
    world: WorldDesc,
    cfg: SimConfig,
    shared: Arc<Shared>,
    start: Instant,
    rest_from: Arc<Mutex<Option<Instant>>>,
) -> anyhow::Result<BotResult> {
    let hello =
        pwn_net::ClientHello::new(pwn_proto::PeerRole::Client, pwn_sim::build_digest(&cfg), "pwn-bench-objects");
    let conn = net.connect(addr, "localhost", &hello).await?;
    let mut c = Client::join(conn, world, cfg.clone(), &JoinOptions::default()).await?;
    c.set_headless(true);
    let dt = cfg.dt_s();
    let mut tick = tokio::time::interval(Duration::from_secs_f32(dt));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut home: Option<Vec3> = None;
    let mut known: HashMap<u64, u16> = HashMap::new();
    let mut pending: HashMap<u64, (u16, f64)> = HashMap::new();
    let (mut door, mut door_state, mut refused) = (None::<u64>, 0u16, 0u64);
    let mut n: u64 = 0;
    let mut played_from = None;
    let mut rest_base: Option<u64> = None;
    let mut rider = false;
    let mut builds = false;
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let now_s = start.elapsed().as_secs_f64();
        let me = c.core().latest_view().and_then(|(_, v)| v.get(&c.me().0)).map(|e| dequantize_position(e.position));
        let crowded = me.is_some_and(|p| {
            c.core().latest_view().is_some_and(|(_, v)| {
                v.range(0..pwn_sim::ids::WORLD_ENTITY_ID_BASE)
                    .any(|(id, e)| *id != c.me().0 && dequantize_position(e.position).distance(p) < KEEP_APART_M)
            })
        });
        let intent = match (home, me) {
            (Some(h), Some(p)) if !builds && !crowded => {
                // A new target near home every three seconds, from the bot's index.
                let k = (n / 90) as f32 + index as f32 * 1.7;
                let target = h + Vec3::new(k.sin(), 0.0, k.cos()) * WANDER_M;
                let d = target - p;
                let far = d.x.hypot(d.z) > 0.3;
                Intent { move_z: if far { 1.0 } else { 0.0 }, yaw_rad: d.x.atan2(d.z), ..Intent::default() }
            }
            _ => Intent::default(),
        };
        let frame = c.update(dt, &intent);
        if home.is_none()
            && c.core().predicting()
            && let Some(p) = me
        {
            home = Some(p);
            rider = on_raft(p);
            builds = builder && !rider;
            played_from = Some(now_s);
        }
        for e in &frame.events {
            if let GameEvent::EditDone { request, object, outcome } = e
                && let Some((state, sent)) = pending.remove(request)
            {
                match outcome {
                    EditOutcome::Committed => {
                        door = Some(*object);
                        door_state = state;
                        if let Ok(mut edits) = shared.edits.lock() {
                            edits.push((*object, state, sent));
                        }
                    }
                    _ => refused += 1,
                }
            }
        }
        if let Some((_, view)) = c.core().latest_view() {
            for (id, e) in view.range(OBJECT_ID_BASE..PROJECTILE_ID_BASE) {
                if known.insert(*id, e.health) != Some(e.health)
                    && let Ok(mut seen) = shared.seen.lock()
                {
                    seen.entry(*id).or_default().push((index, e.health, now_s));
                }
            }
            let gone: Vec<u64> = known.keys().filter(|id| !view.contains_key(id)).copied().collect();
            for id in gone {
                known.remove(&id);
                if let Ok(mut seen) = shared.seen.lock() {
                    seen.entry(id).or_default().push((index, OUT_OF_VIEW, now_s));
                }
            }
        }
        let building = shared.building.load(Ordering::Relaxed);
        if builds
            && building
            && pending.is_empty()
            && n.is_multiple_of(EDIT_EVERY_TICKS)
            && let Some(h) = home
        {
            let side = if index.is_multiple_of(2) { 1.0 } else { -1.0 };
            let (op, state) = match door {
                None => {
                    let at = Vec3::new(h.x + side * 2.5, 1.5, h.z);
                    (EditOp::Place { kind: DOOR, position: quantize_position(at), yaw: 16_384, state: 0 }, 0)
                }
                Some(object) => (EditOp::SetState { object, state: 1 - door_state }, 1 - door_state),
            };
            let request = c.edit(op).await?;
            pending.insert(request, (state, now_s));
        }
        if !building
            && rest_base.is_none()
            && rest_from.lock().ok().and_then(|r| *r).is_some_and(|t| Instant::now() >= t)
        {
            rest_base = Some(c.counters().object_updates);
        }
    }
    let counters = c.counters();
    let rest_object_updates = rest_base.map_or(0, |b| counters.object_updates - b);
    let played_s = played_from.map_or(0.0, |f| start.elapsed().as_secs_f64() - f);
    Ok(BotResult { rider, played_s, counters, rest_object_updates, refused })
}

/// The `q` quantile of `values` (sorted here), 0 for none.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    values[i]
}

/// Prediction figures of one class of bots: error p99 (m) and corrections per minute.
fn class_figures(results: &[&BotResult]) -> (f64, f64, usize) {
    let mut error = Histogram::new(0.005, 1_000);
    let (mut corrections, mut minutes) = (0u64, 0.0f64);
    for r in results {
        error.merge(&r.counters.prediction_error_m);
        corrections += r.counters.corrections;
        minutes += r.played_s / 60.0;
    }
    let per_min = if minutes > 0.0 { corrections as f64 / minutes } else { 0.0 };
    (error.quantile(0.99), per_min, results.len())
}

/// Runs the benchmark.
pub fn bench_objects(cfg: &PwnConfig, args: &BenchObjectsArgs) -> anyhow::Result<()> {
    for (name, v, lo) in [("--measure-s", args.measure_s, 5.0), ("--rest-s", args.rest_s, 1.0)] {
        if !(v.is_finite() && (lo..=3_600.0).contains(&v)) {
            bail!("{name} must be between {lo} and 3600, not {v}");
        }
    }
    let (world, world_text) = bench_world()?;
    let commits_per_s = store_part(args.commits, &world, &cfg.sim)?;

    let temp = tempfile::tempdir()?;
    let world_path = temp.path().join("objects-bench.toml");
    std::fs::write(&world_path, world_text)?;
    let config_path = temp.path().join("pwn.toml");
    let mut file_cfg = cfg.clone();
    file_cfg.world = Some(world_path);
    std::fs::write(&config_path, toml::to_string(&file_cfg)?)?;
    let mut local = start_world(Some(&config_path), 1, &[], temp.path())?;
    let outcome = live_part(args, &world, &cfg.sim, temp.path(), local.addr, local.zones.first().cloned());
    local.stop();
    let live = outcome?;
    report(args, commits_per_s, &live);
    Ok(())
}

/// The live part's figures.
struct Live {
    results: Vec<BotResult>,
    edit_ticks: Vec<f64>,
    edits: usize,
    edits_unseen: usize,
    objects: usize,
    zone_tick_ms_p99: f64,
}

fn live_part(
    args: &BenchObjectsArgs,
    world: &WorldDesc,
    sim: &SimConfig,
    data: &std::path::Path,
    addr: std::net::SocketAddr,
    zone_seconds: Option<crate::demo::Seconds>,
) -> anyhow::Result<Live> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let ca = pwn_net::tls::dev_ca_cert(data)?;
    let tick_hz = f64::from(sim.tick_hz);
    runtime.block_on(async {
        let net = Arc::new(pwn_net::NetClient::new(
            "127.0.0.1:0".parse()?,
            &ca,
            &pwn_net::TransportConfig { connections_max: args.bots as usize + 16, ..Default::default() },
        )?);
        let shared = Arc::new(Shared::default());
        let start = Instant::now();
        let rest_from: Arc<Mutex<Option<Instant>>> = Arc::default();
        let mut tasks = Vec::new();
        for i in 0..args.bots {
            // Builders are the first bots to land on the ground (spawn points are drawn by the
            // zone, so whoever lands there): each bot decides once it has landed.
            let builder = i < args.builders * 2;
            let task = bot(
                i,
                builder,
                net.clone(),
                addr,
                world.clone(),
                sim.clone(),
                shared.clone(),
                start,
                rest_from.clone(),
            );
            tasks.push(tokio::spawn(task));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shared.building.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs_f64(args.measure_s)).await;
        shared.building.store(false, Ordering::Relaxed);
        // Edits in flight land, snapshots settle; then the rest window.
        if let Ok(mut r) = rest_from.lock() {
            *r = Some(Instant::now() + Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_secs_f64(1.0 + args.rest_s)).await;
        shared.stop.store(true, Ordering::Relaxed);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.context("a bot task")??);
        }
        let edits = shared.edits.lock().map(|e| e.clone()).unwrap_or_default();
        let seen = shared.seen.lock().map(|s| s.clone()).unwrap_or_default();
        let mut edit_ticks = Vec::new();
        let mut unseen = 0;
        for (object, state, sent) in &edits {
            // Each nearby bot's first sight of the object in that state after the edit was sent;
            // the edit is seen when the last of them saw it. Nearby: the bots that had the object
            // in view when the edit was sent (a placement: that had it in view soon after).
            let changes = seen.get(object).map_or(&[][..], |v| v.as_slice());
            let mut in_view: HashMap<u32, bool> = HashMap::new();
            for (who, s, at) in changes.iter().filter(|(_, _, at)| at < sent) {
                let _ = at;
                in_view.insert(*who, *s != OUT_OF_VIEW);
            }
            let mut near: std::collections::HashSet<u32> =
                in_view.iter().filter(|(_, v)| **v).map(|(w, _)| *w).collect();
            if near.is_empty() {
                near = changes.iter().filter(|(_, s, at)| s == state && *at < sent + 1.0).map(|(w, _, _)| *w).collect();
            }
            let everyone = near.len();
            let mut firsts: HashMap<u32, f64> = HashMap::new();
            for (who, s, at) in changes {
                if s == state && at >= sent && near.contains(who) {
                    let first = firsts.entry(*who).or_insert(*at);
                    *first = first.min(*at);
                }
            }
            if everyone > 0 && firsts.len() >= everyone {
                let last = firsts.values().copied().fold(f64::MIN, f64::max);
                edit_ticks.push((last - sent) * tick_hz);
            } else {
                unseen += 1;
            }
        }
        let objects = seen.len();
        let mut tick_ms: Vec<f64> = zone_seconds
            .and_then(|s| {
                s.lock().ok().map(|v| v.iter().flat_map(|x| x.tick_ms.iter().map(|t| f64::from(*t))).collect())
            })
            .unwrap_or_default();
        Ok(Live {
            results,
            edits: edits.len(),
            edit_ticks,
            edits_unseen: unseen,
            objects,
            zone_tick_ms_p99: quantile(&mut tick_ms, 0.99),
        })
    })
}

fn report(args: &BenchObjectsArgs, commits_per_s: f64, live: &Live) {
    let riders: Vec<&BotResult> = live.results.iter().filter(|r| r.rider).collect();
    let ground: Vec<&BotResult> = live.results.iter().filter(|r| !r.rider).collect();
    let (rider_err, rider_cpm, n_riders) = class_figures(&riders);
    let (ground_err, ground_cpm, n_ground) = class_figures(&ground);
    let mut ticks = live.edit_ticks.clone();
    let (p50, p99) = (quantile(&mut ticks, 0.5), quantile(&mut ticks, 0.99));
    let rest_updates: u64 = live.results.iter().map(|r| r.rest_object_updates).sum();
    let bytes_per_update = {
        let (b, n) = live
            .results
            .iter()
            .fold((0u64, 0u64), |(b, n), r| (b + r.counters.update_bytes, n + r.counters.entity_updates));
        if n == 0 { 0.0 } else { b as f64 / n as f64 }
    };
    let rest_bytes_per_object_s = if live.objects == 0 {
        0.0
    } else {
        rest_updates as f64 * bytes_per_update / live.objects as f64 / args.rest_s / live.results.len().max(1) as f64
    };
    let refused: u64 = live.results.iter().map(|r| r.refused).sum();
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            a / b
        } else if a > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    };
    println!(
        "pwn bench objects: {} bots ({n_riders} on the raft, {n_ground} on the ground), {:.0} s",
        args.bots, args.measure_s
    );
    println!("  store: {commits_per_s:.0} committed edits/s (SQLite, one at a time as the zone's worker)");
    println!(
        "  edits: {} committed ({refused} refused), {} seen by every bot near: latency p50 {p50:.1} ticks, p99 {p99:.1} ticks ({} not seen by all near)",
        live.edits,
        live.edit_ticks.len(),
        live.edits_unseen
    );
    println!(
        "  prediction error p99: riders {:.3} m, ground {:.3} m; corrections/min: riders {rider_cpm:.2}, ground {ground_cpm:.2}",
        rider_err, ground_err
    );
    println!(
        "  at rest ({:.0} s, {} objects): {rest_updates} object updates received, {rest_bytes_per_object_s:.2} bytes per object per bot per second",
        args.rest_s, live.objects
    );
    println!("  zone tick p99: {:.2} ms", live.zone_tick_ms_p99);
    if args.json {
        let j = serde_json::json!({
            "bots": args.bots,
            "riders": n_riders,
            "ground": n_ground,
            "committed_edits_per_s": commits_per_s,
            "edits_committed": live.edits,
            "edits_refused": refused,
            "edits_seen_by_all": live.edit_ticks.len(),
            "edit_latency_ticks_p50": p50,
            "edit_latency_ticks_p99": p99,
            "rider_prediction_error_m_p99": rider_err,
            "ground_prediction_error_m_p99": ground_err,
            "rider_corrections_per_min": rider_cpm,
            "ground_corrections_per_min": ground_cpm,
            "rider_to_ground_corrections_ratio": ratio(rider_cpm, ground_cpm),
            "objects_at_rest": live.objects,
            "object_updates_at_rest": rest_updates,
            "bytes_per_object_at_rest_per_s": rest_bytes_per_object_s,
            "zone_tick_ms_p99": live.zone_tick_ms_p99,
        });
        println!("{j}");
    }
}
