//! The zone core, driven tick by tick without IO: players join, send inputs, receive packed
//! snapshots they can apply, chat within limits.

use pwn_proto::delta::ReceivedViews;
use pwn_proto::{ChatChannel, ChatSend, GameEvent, InputBatch, WireInput};
use pwn_sim::{EntityId, Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{ChatRefused, Zone, ZoneConfig};

fn zone() -> Zone {
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0], [10.0, 1.0, 0.0]];
    Zone::new(Sim::new(w, SimConfig::default(), 1).unwrap(), ZoneConfig::default())
}

fn forward(seq: u32) -> WireInput {
    WireInput { seq, move_z: 127, buttons: pwn_sim::Buttons::RUN, ..WireInput::default() }
}

#[test]
fn players_move_by_their_inputs_and_clients_rebuild_the_view_from_packed_deltas() {
    let mut z = zone();
    let (a, b) = (EntityId(1), EntityId(2));
    z.join(a).unwrap();
    z.join(b).unwrap();
    let mut views = [ReceivedViews::new(30), ReceivedViews::new(30)];
    let mut acked = [0u64; 2];
    let mut update_bytes = Vec::new();
    let mut last_backlog_a = u8::MAX;
    for t in 1..=90u32 {
        // Each datagram repeats the last three inputs.
        let batch = InputBatch {
            ack_tick: acked[0],
            inputs: (t.saturating_sub(2)..=t).rev().filter(|s| *s > 0).map(forward).collect(),
        };
        z.on_inputs(a, &batch, 0);
        z.on_ack(b, acked[1]);
        let out = z.tick();
        for (player, snapshot) in &out.snapshots {
            let k = if *player == a { 0 } else { 1 };
            if t > 30 && k == 1 {
                update_bytes.push(snapshot.updates.len());
            }
            if k == 0 {
                last_backlog_a = snapshot.input_backlog;
            }
            views[k].apply(snapshot).unwrap();
            acked[k] = snapshot.tick;
        }
    }
    // A's client sees A where the server has it, to the quantization grid.
    let server_a = z.sim().character(a).unwrap().position_m;
    let (_, view) = views[0].latest().unwrap();
    let seen = pwn_sim::quantize::dequantize_position(view[&a.0].position);
    assert!(seen.distance(server_a) < 0.01, "{seen} vs {server_a}");
    assert!(server_a.z > 15.0, "A did not run forward: {server_a}");
    // B, standing still, watches A run: one moving entity per snapshot, a few bytes each.
    let mean = update_bytes.iter().sum::<usize>() as f64 / update_bytes.len() as f64;
    assert!(mean <= 8.0, "{mean} bytes per moving entity update");
    // Releases start once the cushion is full (`[input-6]`); after that one leaves per tick and
    // one arrives, so the queue the snapshots report stays at the cushion less one.
    let cushion = pwn_zone_node::input_buffer::PLAYOUT_CUSHION_TICKS;
    assert_eq!(z.input_counters(a).unwrap().released, 90 - (cushion as u64 - 1));
    assert_eq!(usize::from(last_backlog_a), cushion - 1);
}

#[test]
fn entities_at_rest_cost_nothing_once_acknowledged() {
    let mut z = zone();
    let a = EntityId(1);
    z.join(a).unwrap();
    let mut views = ReceivedViews::new(30);
    let mut last_len = usize::MAX;
    for _ in 0..40 {
        let out = z.tick();
        let (_, s) = &out.snapshots[0];
        views.apply(s).unwrap();
        z.on_ack(a, s.tick);
        last_len = s.updates.len();
    }
    assert_eq!(last_len, 0, "a resting world still cost bytes");
}

#[test]
fn chat_reaches_players_in_range_and_is_rate_limited() {
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    let mut z = Zone::new(Sim::new(w, SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    let (a, b) = (EntityId(1), EntityId(2));
    z.join(a).unwrap();
    z.join(b).unwrap();
    let line = |text: &str| ChatSend { channel: ChatChannel::Proximity, text: text.into() };
    z.on_chat(a, line("hello")).unwrap();
    z.on_chat(a, line("again")).unwrap();
    assert_eq!(z.on_chat(a, line("spam")), Err(ChatRefused::RateLimited));
    assert_eq!(z.on_chat(a, line("   ")), Err(ChatRefused::BadLength));
    let out = z.tick();
    let to_b: Vec<&GameEvent> = out.events.iter().filter(|(p, _)| *p == b).map(|(_, e)| e).collect();
    assert!(to_b.iter().any(|e| matches!(e, GameEvent::Chat { from: 1, text, .. } if text == "hello")), "{to_b:?}");
}

#[test]
fn a_joining_player_is_told_its_entity() {
    let mut z = zone();
    z.join(EntityId(7)).unwrap();
    let out = z.tick();
    assert!(
        out.events.iter().any(|(p, e)| *p == EntityId(7) && matches!(e, GameEvent::Joined { entity: 7, .. })),
        "{:?}",
        out.events
    );
}

#[test]
fn in_a_crowd_a_player_sees_only_the_nearest_entities() {
    let mut w = WorldDesc::flat(400.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0]];
    let cfg = ZoneConfig { interest_entities_max: 20, ..ZoneConfig::default() };
    let mut z = Zone::new(Sim::new(w, SimConfig::default(), 1).unwrap(), cfg);
    // Sixty players spawn in rings around one point, all within the interest radius.
    let players: Vec<EntityId> = (1..=60).map(EntityId).collect();
    for p in &players {
        z.join(*p).unwrap();
    }
    let mut views: Vec<ReceivedViews> = players.iter().map(|_| ReceivedViews::new(30)).collect();
    for _ in 0..5 {
        let out = z.tick();
        for (p, s) in &out.snapshots {
            let k = (p.0 - 1) as usize;
            views[k].apply(s).unwrap();
            z.on_ack(*p, s.tick);
        }
    }
    for (k, p) in players.iter().enumerate() {
        let (_, view) = views[k].latest().unwrap();
        assert!(view.len() <= 20, "player {p} holds {} entities", view.len());
        assert!(view.contains_key(&p.0), "player {p} does not see itself");
        let me = z.sim().character(*p).unwrap().position_m;
        let dist = |id: &u64| z.sim().character(EntityId(*id)).map(|c| (c.position_m - me).length());
        let farthest_seen = view.keys().filter_map(dist).fold(0.0f32, f32::max);
        let nearest_unseen =
            players.iter().filter(|q| !view.contains_key(&q.0)).filter_map(|q| dist(&q.0)).fold(f32::MAX, f32::min);
        // Positions moved a little since the snapshot (falling after spawn): a small margin.
        assert!(farthest_seen <= nearest_unseen + 0.5, "player {p}: sees {farthest_seen} m away, not {nearest_unseen}");
    }
}

/// The shell's input-to-acknowledgement histogram: 1 ms buckets, the last one open-ended,
/// emptied by each read.
#[test]
fn input_ack_times_are_counted_in_millisecond_buckets() {
    use pwn_zone_node::server::{INPUT_ACK_BUCKETS, ZoneStats};
    let stats = ZoneStats::default();
    assert!(stats.take_input_ack_ms().is_empty());
    stats.record_input_acks([0.2, 33.9, 33.1, 1e9, -5.0].into_iter());
    let h = stats.take_input_ack_ms();
    assert_eq!(h.len(), INPUT_ACK_BUCKETS);
    assert_eq!((h[0], h[33], h[INPUT_ACK_BUCKETS - 1]), (2, 2, 1));
    assert_eq!(h.iter().sum::<u64>(), 5);
    assert!(stats.take_input_ack_ms().is_empty(), "read once");
}

/// Spawns are reliable events for the players near them; a dead player keeps receiving
/// snapshots (acknowledging its inputs) where it fell, and hears of its own respawn.
#[test]
fn spawns_are_announced_nearby_and_the_dead_keep_their_snapshots() {
    let mut w = WorldDesc::flat(1000.0);
    w.spawn_points = vec![[0.0, 1.0, 0.0], [5.0, 1.0, 0.0], [400.0, 1.0, 0.0]];
    let mut z = Zone::new(Sim::new(w, SimConfig::default(), 1).unwrap(), ZoneConfig::default());
    let (near, far, fallen) = (EntityId(1), EntityId(2), EntityId(3));
    let at = |x: f32| {
        let mut c = pwn_sim::CharacterState::spawned_at(glam::Vec3::new(x, 1.0, 0.0), &SimConfig::default());
        c.health = 100;
        c
    };
    z.join_at(near, Some(at(0.0))).unwrap();
    z.join_at(far, Some(at(400.0))).unwrap();
    z.tick();
    // A character joins near `near`, dead and about to respawn.
    let mut dead = at(5.0);
    dead.health = 0;
    dead.respawn_ticks = 3;
    z.join_at(fallen, Some(dead)).unwrap();
    let spawned_to = |out: &pwn_zone_node::zone::TickOutput, entity: EntityId| -> Vec<EntityId> {
        out.events
            .iter()
            .filter(|(_, e)| matches!(e, GameEvent::Spawned { entity: s, .. } if *s == entity.0))
            .map(|(p, _)| *p)
            .collect()
    };
    let first = z.tick();
    assert_eq!(spawned_to(&first, fallen), vec![near], "the join is announced nearby only, not to itself");
    assert!(first.snapshots.iter().any(|(p, _)| *p == fallen), "the dead get snapshots too");
    let mut respawn = Vec::new();
    for seq in 1..=6u32 {
        z.on_inputs(fallen, &InputBatch { ack_tick: 0, inputs: vec![forward(seq)] }, 0);
        let out = z.tick();
        let acked = out.snapshots.iter().find(|(p, _)| *p == fallen).map(|(_, s)| s.input_ack);
        assert!(acked.is_some(), "tick {seq}: no snapshot for the dead player");
        respawn.extend(spawned_to(&out, fallen));
    }
    respawn.sort();
    assert_eq!(respawn, vec![near, fallen], "the respawn is announced nearby and to the player itself");
}

/// Players' views built across a pool of threads (`ZoneConfig::tick_threads`) are the serial
/// path's, byte for byte: two zones fed the same crowd's inputs (wandering, jumping, shooting,
/// acknowledging late or not at all, one leaving and one joining half-way) produce equal
/// snapshots and events every tick (issue 14, item 2).
#[test]
fn views_built_in_parallel_are_the_serial_bytes() {
    for seed in [1u64, 2] {
        let make = |threads: usize| {
            let mut w = WorldDesc::flat(400.0);
            w.spawn_points =
                (0..16).map(|i| [(i % 4) as f32 * 20.0 - 30.0, 1.0, (i / 4) as f32 * 20.0 - 30.0]).collect();
            let cfg = ZoneConfig { tick_threads: threads, interest_entities_max: 32, ..ZoneConfig::default() };
            Zone::new(Sim::new(w, SimConfig::default(), seed).unwrap(), cfg)
        };
        let (mut serial, mut parallel) = (make(1), make(3));
        let players: Vec<EntityId> = (1..=200).map(EntityId).collect();
        for p in &players {
            serial.join(*p).unwrap();
            parallel.join(*p).unwrap();
        }
        let mut rng = pwn_sim::rng::SimRng::new(seed);
        let mut acked = vec![0u64; players.len() + 1];
        for t in 1..=45u32 {
            if t == 20 {
                serial.leave(players[7]);
                parallel.leave(players[7]);
                serial.join(EntityId(1_000)).unwrap();
                parallel.join(EntityId(1_000)).unwrap();
            }
            for (i, p) in players.iter().enumerate() {
                let r = rng.next_u64();
                let input = WireInput {
                    seq: t,
                    move_x: (r % 255) as i8,
                    move_z: ((r >> 8) % 255) as i8,
                    yaw: (r >> 16) as u16,
                    pitch: 0,
                    buttons: ((r >> 32) % 8) as u8,
                    view_tick: u64::from(t).saturating_sub((r >> 40) % 6),
                };
                // A third acknowledge every tick, a third every fourth, a third never.
                let ack = match i % 3 {
                    0 => acked[i],
                    1 if t % 4 == 0 => acked[i],
                    _ => 0,
                };
                let batch = InputBatch { ack_tick: ack, inputs: vec![input] };
                serial.on_inputs(*p, &batch, 0);
                parallel.on_inputs(*p, &batch, 0);
            }
            let (a, b) = (serial.tick(), parallel.tick());
            assert!(!a.snapshots.is_empty());
            assert_eq!(a.snapshots, b.snapshots, "seed {seed}, tick {t}: snapshots differ");
            assert_eq!(a.events, b.events, "seed {seed}, tick {t}: events differ");
            for (p, s) in &a.snapshots {
                if let Ok(i) = players.binary_search(p) {
                    acked[i] = s.tick;
                }
            }
        }
    }
}

/// The operator's bound on lag compensation (`ZoneConfig::max_rewind_ms`): a shot whose
/// shooter claims to have seen a very old world is rewound only as far as the bound, and not at
/// all with the bound at 0 (issue 14, item 1).
#[test]
fn the_zone_bounds_the_rewind_a_shooter_asks_for() {
    for (max_rewind_ms, expected) in [(100u32, 3u8), (0, 0), (250, 7), (266, 7), (267, 8)] {
        let mut w = WorldDesc::flat(400.0);
        w.spawn_points = vec![[0.0, 1.0, 0.0]];
        let cfg = ZoneConfig { max_rewind_ms, ..ZoneConfig::default() };
        let mut z = Zone::new(Sim::new(w, SimConfig::default(), 1).unwrap(), cfg);
        let me = EntityId(1);
        z.join(me).unwrap();
        // Ten quiet ticks first, so that the world has a past to rewind into.
        for _ in 0..10 {
            z.tick();
        }
        let mut rewinds = std::collections::BTreeMap::new();
        for t in 1..=30u32 {
            let fire = WireInput { seq: t, buttons: pwn_sim::Buttons::FIRE, view_tick: 1, ..WireInput::default() };
            z.on_inputs(me, &InputBatch { ack_tick: 0, inputs: vec![fire] }, 0);
            z.tick();
            rewinds.extend(z.sim().projectiles().map(|p| (p.id, p.rewind_ticks)));
        }
        let rewinds: Vec<u8> = rewinds.into_values().collect();
        assert!(!rewinds.is_empty(), "no shot fired");
        assert!(rewinds.iter().all(|r| *r == expected), "bound {max_rewind_ms} ms: {rewinds:?}");
    }
    assert_eq!(pwn_zone_node::zone::rewind_bound(0, 100, 5), 0, "no view tick, no rewind");
    assert_eq!(pwn_zone_node::zone::rewind_bound(200, 100, 5), 100, "a view from the future is now");
    assert_eq!(pwn_zone_node::zone::rewind_bound(97, 100, 5), 97);
}

/// A projectile handed over by a neighbour keeps its rewind only as far as this zone's own
/// bound allows: an operator who turns lag compensation down or off on a zone gets no longer
/// rewinds there from shots fired next door (issue 14, item 1).
#[test]
fn a_projectile_handed_over_is_rewound_no_further_than_this_zones_bound() {
    for (max_rewind_ms, expected) in [(0u32, 0u8), (100, 3), (250, 7), (1_000, 30)] {
        let w = WorldDesc::flat(400.0);
        let cfg = ZoneConfig { max_rewind_ms, ..ZoneConfig::default() };
        let mut z = Zone::new(Sim::new(w.clone(), SimConfig::default(), 1).unwrap(), cfg);
        z.join_clock(100);
        // A projectile as the neighbour's simulation holds it, fired with the longest rewind.
        let mut there = Sim::new(w, SimConfig::default(), 1).unwrap();
        let shooter = EntityId(7);
        there.spawn_character(shooter).unwrap();
        let fire = pwn_sim::PlayerInput {
            seq: pwn_sim::InputSeq(1),
            buttons: pwn_sim::Buttons(pwn_sim::Buttons::FIRE),
            view_tick: 1,
            ..pwn_sim::PlayerInput::default()
        };
        there.join_clock(pwn_sim::Tick(99));
        there.step(&[(shooter, fire)].into_iter().collect());
        let p = there.projectiles().next().expect("fired").clone();
        assert_eq!(u64::from(p.rewind_ticks), pwn_sim::lagcomp::REWIND_TICKS_MAX);
        let h = pwn_proto::HandoffProjectile { tick: 100, projectile: pwn_proto::WireProjectile::of(&p) };
        assert!(z.arrive_projectile(&h), "refused");
        let here = z.sim().projectile(p.id).expect("arrived");
        assert_eq!(here.rewind_ticks, expected, "bound {max_rewind_ms} ms");
    }
}
