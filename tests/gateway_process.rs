//! A gateway killed with SIGKILL while a player is in the world: the zone sees the link end and
//! saves the player; a new gateway process starts, the player logs in again and comes back
//! where it was.

use pwn_client::{Client, Intent, JoinOptions, Login};
use pwn_net::{NetClient, TransportConfig};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pwn ARGS`, returns it and the address its first line names.
fn start(args: &[&str]) -> (Role, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pwn");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || for _ in out.lines() {});
    let addr = line.split_whitespace().nth(4).expect("an address in the first line").to_owned();
    (Role(child), addr)
}

async fn play(net: &NetClient, gateway: &str, intent: Intent, ticks: u32) -> (Client, glam::Vec3, glam::Vec3) {
    let login = Login::LoginOrRegister(pwn_proto::Credentials {
        username: "survivor".into(),
        password: "a long enough password".into(),
    });
    let options = JoinOptions { login: Some(login), ..JoinOptions::default() };
    let mut client = Client::connect(
        net,
        gateway.parse().unwrap(),
        "localhost",
        pwn_sim::WorldDesc::arena(),
        pwn_sim::SimConfig::default(),
        "gateway-process-test",
        &options,
    )
    .await
    .unwrap();
    let dt = 1.0 / 30.0;
    let (mut first, mut last) = (None, None);
    for _ in 0..ticks {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        last = client.update(dt, &intent).me.or(last);
        first = first.or(last);
    }
    let (first, last) = (first.expect("the player was drawn"), last.expect("the player was drawn"));
    (client, first.position_m, last.position_m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_with_sigkill_loses_no_player() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (_zone, zone_addr) = start(&["zone", "--listen", "127.0.0.1:0", "--gateway-only", "--data", data]);
    let (mut gateway, gateway_addr) =
        start(&["gateway", "--listen", "127.0.0.1:0", "--zone", &zone_addr, "--data", data]);
    let ca = pwn_net::tls::dev_ca_cert(dir.path()).unwrap();
    let net = NetClient::new("127.0.0.1:0".parse().unwrap(), &ca, &TransportConfig::default()).unwrap();

    let run = Intent { move_z: 1.0, buttons: pwn_sim::Buttons(pwn_sim::Buttons::RUN), ..Intent::default() };
    let (client, spawned_at, _) = play(&net, &gateway_addr, run, 60).await;
    // Stand still so the zone's position is the one drawn.
    let (client, left_at) = play_on(client, Intent::default(), 30).await;
    assert!(left_at.distance(spawned_at) > 3.0, "the player ran through the gateway: {spawned_at} -> {left_at}");
    gateway.0.kill().unwrap(); // SIGKILL: no logout, no goodbye.
    gateway.0.wait().unwrap();
    drop(client);
    // The new gateway's attach takes the player over in the zone (the old link may not have
    // timed out yet); either way the player is where it was.
    let (_gateway, gateway_addr) = start(&["gateway", "--listen", "127.0.0.1:0", "--zone", &zone_addr, "--data", data]);
    let mut back_at = None;
    for _ in 0..40 {
        let (_, p, _) = play(&net, &gateway_addr, Intent::default(), 15).await;
        if p.distance(left_at) < 0.5 {
            back_at = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(back_at.is_some(), "the player did not come back where it was ({left_at})");
}

async fn play_on(mut client: Client, intent: Intent, ticks: u32) -> (Client, glam::Vec3) {
    let dt = 1.0 / 30.0;
    let mut last = None;
    for _ in 0..ticks {
        tokio::time::sleep(Duration::from_secs_f32(dt)).await;
        last = client.update(dt, &intent).me.or(last);
    }
    (client, last.expect("the player was drawn").position_m)
}
