//! `[zitem-6]` with real processes: two players who walked to either side of a border, each
//! simulated by a different zone of `pwn up --zones 4`, and a gift from one to the other. The
//! item moves in one transaction fenced by both zones' leases and owner records, both players
//! are told, and the store audit stays clean.

use pwn_client::{Client, Intent, JoinOptions, Login};
use pwn_proto::{Credentials, GameEvent};
use pwn_store::keys::CellKey;
use std::time::Duration;

mod common;

const PASSWORD: &str = "a long enough password";
const WAIT: Duration = Duration::from_secs(30);

async fn play(net: &pwn_net::NetClient, addr: std::net::SocketAddr, login: Login) -> Client {
    let options = JoinOptions { login: Some(login), ..JoinOptions::default() };
    let (world, cfg) = (pwn_sim::WorldDesc::arena(), pwn_sim::SimConfig::default());
    Client::connect(net, addr, "localhost", world, cfg, "gift-test", &options).await.unwrap()
}

fn creds(name: &str) -> Credentials {
    Credentials { username: name.into(), password: PASSWORD.into() }
}

/// Steps `clients` in real time, each walking to its target (if any), until `done` holds (or
/// fails after `WAIT`), given the clients and the ids each drew last; returns the events each
/// saw.
async fn play_until(
    clients: &mut [&mut Client],
    targets: &[Option<[f32; 2]>],
    mut done: impl FnMut(&[&mut Client], &[Vec<u64>]) -> bool,
) -> Vec<Vec<GameEvent>> {
    let dt = 1.0 / 30.0;
    let mut seen = vec![Vec::new(); clients.len()];
    let mut drawn = vec![Vec::new(); clients.len()];
    let mut at: Vec<Option<glam::Vec3>> = vec![None; clients.len()];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(clients, &drawn) {
        assert!(tokio::time::Instant::now() < deadline, "timed out at {at:?}; events seen: {seen:?}");
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        for (i, c) in clients.iter_mut().enumerate() {
            let mut intent = Intent::default();
            if let (Some([x, z]), Some(p)) = (targets.get(i).copied().flatten(), at[i]) {
                let (dx, dz) = (x - p.x, z - p.z);
                if dx.hypot(dz) > 0.2 {
                    intent.yaw_rad = dx.atan2(dz);
                    intent.move_z = 1.0;
                }
            }
            let frame = c.update(dt, &intent);
            at[i] = frame.me.map(|m| m.position_m);
            drawn[i] = frame.others.iter().map(|d| d.id).collect();
            seen[i].extend(frame.events);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zitem_6_a_gift_across_a_border_between_two_running_zones() {
    let dir = tempfile::tempdir().unwrap();
    let up = common::start_up(dir.path(), true);
    let addr: std::net::SocketAddr = up.addr.parse().unwrap();
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let net =
        pwn_net::NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &pwn_net::TransportConfig::default()).unwrap();
    let store = pwn_store::Store::new(std::sync::Arc::new(
        pwn_store::SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap(),
    ));
    let kit = pwn_gateway::accounts::STARTER_KIT.len();

    let mut giver = play(&net, addr, Login::Register(creds("giver"))).await;
    let mut taker = play(&net, addr, Login::Register(creds("taker"))).await;
    let ids = [giver.me().0, taker.me().0];
    let taker_id = ids[1];
    // New players enter at a spawn point of the zone the world server sends them to; these two
    // walk to 2.8 m on either side of the border x = 0 at z = -20 (more than the 2 m
    // hysteresis from it, within the 6 m a gift reaches), where the south-west and south-east
    // cells meet: two cells of the 2x2 partition, two zones.
    let owner = |id: u64| store.transact(|t| pwn_store::ownership::owner(t, id)).unwrap();
    let south_west = CellKey { level: 1, path: 0 };
    let south_east = CellKey { level: 1, path: 1 };
    let targets = [Some([-2.8, -20.0]), Some([2.8, -20.0])];
    play_until(&mut [&mut giver, &mut taker], &targets, |c, drawn| {
        owner(ids[0]) == Some(south_west)
            && owner(ids[1]) == Some(south_east)
            && c.iter().all(|c| c.core().inventory().len() == kit)
            && drawn[0].contains(&taker_id)
    })
    .await;
    let (west, east) = (south_west, south_east);
    let leases = store.transact(|t| pwn_store::fence::all_leases(t)).unwrap();
    let node_of = |c: CellKey| leases.iter().find(|(k, _)| *k == c).map(|(_, l)| l.node).unwrap();
    assert_ne!(node_of(west), node_of(east), "two zones serve the two cells: {leases:?}");

    let (gift, kind) = giver.core().inventory().iter().map(|(i, k)| (*i, *k)).next().unwrap();
    giver.give(gift, taker_id).await.unwrap();
    let seen = play_until(&mut [&mut giver, &mut taker], &[None, None], |c, _| {
        c[0].core().inventory().len() == kit - 1 && c[1].core().inventory().len() == kit + 1
    })
    .await;
    let moved = GameEvent::ItemMoved { item: gift, kind, from: ids[0], to: taker_id };
    assert!(seen[0].contains(&moved), "the giver was told: {:?}", seen[0]);
    assert!(seen[1].contains(&moved), "the taker was told, through its own zone: {:?}", seen[1]);
    assert_eq!(taker.core().inventory().get(&gift), Some(&kind));
    let record = store.transact(|t| pwn_store::items::get(t, gift)).unwrap().unwrap();
    assert_eq!(record.owner, taker_id, "the store gave it to the taker");
    let audit = store.transact(|t| pwn_store::audit::audit(t)).unwrap();
    assert!(audit.clean(), "{audit:?}");
    assert_eq!(audit.items as usize, 2 * kit, "{audit:?}");
}
