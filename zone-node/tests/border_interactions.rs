//! Interactions across a border between two zone cores (no network): a shot fired at a player
//! on the other side hits its ghost, the hit goes to the owner and is applied exactly once even
//! when delivered twice (`[ghost-2]`); proximity chat from a neighbour reaches only the players
//! within the chat radius.

use pwn_partitioner::{Epoch, Quadtree, ZoneId};
use pwn_proto::{GameEvent, InputBatch, WireInput};
use pwn_sim::{Buttons, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use pwn_store::keys::CellKey;
use pwn_zone_node::persist::PlayerState;
use pwn_zone_node::territory::{BorderConfig, Territory};
use pwn_zone_node::zone::{Zone, ZoneConfig};

const WEST: ZoneId = ZoneId(1);
const EAST: ZoneId = ZoneId(2);

/// Two zones: WEST owns the cells with x < 0, EAST those with x >= 0.
fn zones() -> [(Zone, Territory); 2] {
    let desc = WorldDesc::arena();
    let tree = Quadtree::uniform(desc.origin_m, desc.size_m, 1).unwrap();
    let owners: Vec<(CellKey, ZoneId, Epoch)> =
        tree.leaves().map(|c| (c, if tree.rect(c).min[0] < 0.0 { WEST } else { EAST }, Epoch(1))).collect();
    [WEST, EAST].map(|me| {
        let mut t = Territory::new(tree.clone(), me, BorderConfig::default());
        t.set_owners(owners.iter().copied());
        (Zone::new(Sim::new(desc.clone(), SimConfig::default(), 1).unwrap(), ZoneConfig::default()), t)
    })
}

fn place(zone: &mut Zone, territory: &Territory, id: u64, at: [f32; 3]) {
    let state = PlayerState { id: EntityId(id), position: at.into(), yaw_rad: 0.0, health: 100 };
    zone.join_at(EntityId(id), state.character(zone.sim().config())).unwrap();
    zone.set_player_cell(EntityId(id), territory.tree().leaf_at(at[0], at[2]));
}

/// Exchanges ghost batches both ways, as the zone links would each tick.
fn exchange(pair: &mut [(Zone, Territory); 2]) {
    let tick = pair[0].0.sim().tick().0;
    let west = pair[0].0.ghost_batches(&pair[0].1).remove(&EAST).unwrap_or_default();
    let east = pair[1].0.ghost_batches(&pair[1].1).remove(&WEST).unwrap_or_default();
    pair[1].0.apply_ghosts(WEST, tick, true, &west);
    pair[0].0.apply_ghosts(EAST, tick, true, &east);
}

#[test]
fn ghost_2_a_shot_across_the_border_hits_once_at_the_owner() {
    let mut pair = zones();
    let (shooter, target) = (EntityId(1), EntityId(2));
    {
        let [(w, wt), (e, et)] = &mut pair;
        place(w, wt, shooter.0, [-3.0, 1.0, 100.0]);
        place(e, et, target.0, [3.0, 1.0, 100.0]);
    }
    // Let both settle on the ground and see each other's ghosts.
    for _ in 0..30 {
        pair[0].0.tick();
        pair[1].0.tick();
        exchange(&mut pair);
    }
    assert!(pair[0].0.sim().is_ghost(target), "the target is a ghost in the shooter's zone");
    let health_before = pair[1].0.sim().character(target).unwrap().health;
    let mut hits = Vec::new();
    let mut seq = 0;
    for _ in 0..60 {
        seq += 1;
        // Aim along +x, at the target across the border.
        let fire = PlayerInput {
            seq: InputSeq(seq),
            yaw_rad: std::f32::consts::FRAC_PI_2,
            buttons: Buttons(if seq <= 3 { Buttons::FIRE } else { 0 }),
            ..PlayerInput::default()
        };
        let batch = InputBatch { ack_tick: 0, inputs: vec![WireInput::from_input(&fire)] };
        pair[0].0.on_inputs(shooter, &batch, 0);
        let out = pair[0].0.tick();
        hits.extend(pair[0].0.ghost_hits(&out.report));
        pair[1].0.tick();
        exchange(&mut pair);
        if !hits.is_empty() {
            break;
        }
    }
    let hit = hits.first().expect("the shot hit the target's ghost").hit;
    assert_eq!(hits[0].node, EAST);
    assert_eq!(hit.target, target.0);
    // The shooter's zone dealt no damage to the ghost itself.
    assert_eq!(pair[0].0.sim().character(target).map(|c| c.health), Some(health_before));
    // Delivered twice (a retried link message): applied once.
    let dealt = pair[1].0.apply_ghost_hit(&hit);
    assert_eq!(pair[1].0.apply_ghost_hit(&hit), 0);
    assert!(dealt > 0);
    assert_eq!(pair[1].0.sim().character(target).unwrap().health, health_before - dealt);
    assert_eq!(pair[1].0.border_counters().hits_repeated, 1);
}

#[test]
fn border_chat_reaches_the_players_within_the_chat_radius() {
    let mut pair = zones();
    let [(_, _), (e, et)] = &mut pair;
    place(e, et, 2, [5.0, 1.0, 100.0]);
    place(e, et, 3, [60.0, 1.0, 100.0]);
    e.tick();
    e.border_chat(EntityId(1), glam::Vec3::new(-5.0, 1.0, 100.0), "hello across");
    let out = e.tick();
    let heard: Vec<u64> = out
        .events
        .iter()
        .filter(|(_, ev)| matches!(ev, GameEvent::Chat { from: 1, text, .. } if text == "hello across"))
        .map(|(p, _)| p.0)
        .collect();
    assert_eq!(heard, vec![2], "only the player within 30 m hears it");
}
