//! The client core against the zone core with no network between. A player who dies and
//! respawns: while dead its own character is missing from its view and its inputs are still
//! acknowledged; when it comes back at the spawn point, prediction starts over once it rests, so
//! the move is counted as a respawn, not as a correction or a prediction error (`[game-11]`).
//! A player who runs into another standing in its way is held back in its prediction as on the
//! server (`[game-12]`), so the contact costs no correction.

use pwn_client::{GameClient, Intent};
use pwn_proto::{GameEvent, Message};
use pwn_sim::{EntityId, Sim, SimConfig, WorldDesc};
use pwn_zone_node::zone::{Zone, ZoneConfig};

/// One tick: the client's frame and messages up, the zone's tick, its messages down (a second
/// `Joined` is not delivered: here the zone re-placing the player only stages a death).
fn step(zone: &mut Zone, client: &mut GameClient, me: EntityId, joined: &mut bool, intent: &Intent) {
    let dt = zone.sim().config().dt_s();
    client.update(dt, intent);
    for m in client.drain_outbox().collect::<Vec<_>>() {
        match m {
            Message::Inputs(batch) => zone.on_inputs(me, &batch, 0),
            Message::SnapshotAck(ack) => zone.on_ack(me, ack.tick),
            _ => {}
        }
    }
    let out = zone.tick();
    let now = client.now_s();
    for (_, snapshot) in out.snapshots.into_iter().filter(|(p, _)| *p == me) {
        client.on_message(now, Message::Snapshot(snapshot));
    }
    for (_, event) in out.events.into_iter().filter(|(p, _)| *p == me) {
        if matches!(event, GameEvent::Joined { .. }) && std::mem::replace(joined, true) {
            continue;
        }
        client.on_message(now, Message::Event(event));
    }
}

/// A zone on flat ground spawning at `spawn`, with player 1 joined and `others` placed, and
/// player 1's client core once it predicts.
fn predicting(spawn: [f32; 3], others: &[(EntityId, glam::Vec3)]) -> (Zone, GameClient, bool) {
    let cfg = SimConfig::default();
    let mut world = WorldDesc::flat(400.0);
    world.spawn_points = vec![spawn];
    let mut zone = Zone::new(Sim::new(world.clone(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    zone.join(ME).unwrap();
    for (id, at) in others {
        zone.join_at(*id, Some(pwn_sim::CharacterState::spawned_at(*at, &cfg))).unwrap();
    }
    let mut client = GameClient::new(world, cfg, ME);
    let mut joined = false;
    for _ in 0..120 {
        step(&mut zone, &mut client, ME, &mut joined, &Intent::default());
        if client.predicting() && client.counters().confirmations > 10 {
            break;
        }
    }
    assert!(client.predicting(), "prediction started");
    (zone, client, joined)
}

const ME: EntityId = EntityId(1);

#[test]
fn a_respawn_is_not_a_misprediction() {
    let (mut zone, mut client, mut joined) = predicting([30.0, 1.0, 0.0], &[]);
    let me = ME;

    // The player runs; the character dies (staged: put back dead, respawning in 10 ticks) while
    // the player keeps running.
    let run = Intent { move_z: 1.0, ..Intent::default() };
    for _ in 0..30 {
        step(&mut zone, &mut client, me, &mut joined, &run);
    }
    let mut dead = zone.leave(me).expect("the character");
    dead.position_m.x = -30.0;
    dead.health = 0;
    dead.respawn_ticks = 10;
    zone.join_at(me, Some(dead)).unwrap();
    let acks_before = client.counters().input_ack_ticks.count();
    for _ in 0..5 {
        step(&mut zone, &mut client, me, &mut joined, &run);
    }
    assert!(client.counters().input_ack_ticks.count() > acks_before, "inputs acknowledged while dead");
    for _ in 0..60 {
        step(&mut zone, &mut client, me, &mut joined, &run);
    }
    let c = client.counters();
    assert_eq!(c.respawns, 1);
    // Back at the spawn point it came to rest (the zone did not repeat the running from
    // before the death), prediction started again and the player runs on.
    assert!(client.predicting(), "predicting again once the character rested");
    assert_eq!(c.corrections, 0, "the respawn was not counted as a correction");
    assert!(c.prediction_error_m.max() < 0.01, "prediction error {}", c.prediction_error_m.max());
    let drawn = client.update(0.0, &run).me.expect("drawn again");
    assert!((drawn.position_m.x - 30.0).abs() < 2.0, "drawn near the spawn point: {}", drawn.position_m);
    let server = zone.sim().character(me).unwrap().position_m;
    assert!(server.z > 3.0 && drawn.position_m.distance(server) < 1.0, "running on: {server} / {}", drawn.position_m);
}

#[test]
fn running_into_a_standing_player_is_predicted() {
    // Someone stands 4 m ahead (no client: the zone keeps it where it is).
    let other = EntityId(2);
    let (mut zone, mut client, mut joined) = predicting([0.0, 1.0, 0.0], &[(other, glam::Vec3::new(0.0, 1.0, 4.0))]);
    let me = ME;
    let run = Intent { move_z: 1.0, ..Intent::default() };
    for _ in 0..60 {
        step(&mut zone, &mut client, me, &mut joined, &run);
    }
    let (mine, theirs) =
        (zone.sim().character(me).unwrap().position_m, zone.sim().character(other).unwrap().position_m);
    let gap = glam::Vec2::new(theirs.x - mine.x, theirs.z - mine.z).length();
    assert!(gap < 1.5, "the runner reached the one standing: {mine} / {theirs}");
    let c = client.counters();
    assert_eq!(c.corrections, 0, "the contact was predicted: {c:?}");
    assert!(c.confirmations > 40 && c.snapshots_dropped == 0, "{c:?}");
}

/// `[game-14]`: a client that does not predict still plays: after the same wait as a predicting
/// one it sends inputs the zone applies (the character runs), acknowledges snapshots, measures
/// input acknowledgement and fires shots, with no predicted world and nothing counted as a
/// prediction; a respawn starts it over like a join.
#[test]
fn a_client_without_prediction_plays_and_is_acknowledged() {
    let cfg = SimConfig::default();
    let mut world = WorldDesc::flat(400.0);
    world.spawn_points = vec![[0.0, 1.0, 0.0]];
    let mut zone = Zone::new(Sim::new(world.clone(), cfg.clone(), 1).unwrap(), ZoneConfig::default());
    zone.join(ME).unwrap();
    let mut client = GameClient::new(world, cfg, ME);
    client.set_predict(false);
    let mut joined = false;
    let run = Intent { move_z: 1.0, buttons: pwn_sim::Buttons(pwn_sim::Buttons::FIRE), ..Intent::default() };
    for _ in 0..150 {
        step(&mut zone, &mut client, ME, &mut joined, &run);
    }
    let c = client.counters().clone();
    assert!(!client.predicting(), "no predicted world");
    assert!(c.inputs_sent > 60, "inputs sent: {}", c.inputs_sent);
    assert!(c.input_ack_ticks.count() > 60, "inputs acknowledged: {}", c.input_ack_ticks.count());
    assert_eq!((c.corrections, c.confirmations, c.projectiles_predicted), (0, 0, 0), "nothing predicted");
    let server = zone.sim().character(ME).unwrap().position_m;
    assert!(server.z > 5.0, "the zone applied the inputs: {server}");
    let drawn = client.update(0.0, &run).me.expect("drawn");
    assert!(drawn.position_m.distance(server) < 2.0, "drawn where the server has it: {} / {server}", drawn.position_m);
    assert!(zone.sim().projectiles().count() > 0 || c.events > 0, "shots fired");

    // Dead and back: held still until it rests, then playing again.
    let mut dead = zone.leave(ME).expect("the character");
    dead.health = 0;
    dead.respawn_ticks = 10;
    zone.join_at(ME, Some(dead)).unwrap();
    for _ in 0..90 {
        step(&mut zone, &mut client, ME, &mut joined, &run);
    }
    let after = client.counters();
    assert_eq!(after.respawns, 1);
    assert!(after.input_ack_ticks.count() > c.input_ack_ticks.count() + 20, "playing again after the respawn");
}
