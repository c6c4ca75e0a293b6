//! `pwn attack` against a real `pwn up` (every role its own process): each attack gets the
//! answer a sound server gives, and every process is still running afterwards. The attacks
//! that take long here (the login storm hashes in a debug build) are left to
//! `pwn bench attack`.

mod common;

const ATTACKS: &str = "garbage_frames,oversized_frames,wrong_version,wrong_digest,legacy_alpn,stream_flood,connection_flood,half_open,foreign_datagrams";

#[test]
fn every_attack_gets_the_answer_of_a_sound_server_and_the_world_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let up = common::start_up(dir.path(), true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(["attack", "--addr", &up.addr, "--data", dir.path().to_str().unwrap(), "--duration", "8"])
        .args(["--addresses", "8", "--attacks", ATTACKS, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for name in ATTACKS.split(',') {
        let attack = &report[name];
        assert!(attack["attempts"].as_u64().unwrap_or(0) > 0, "{name} never ran: {report}");
        assert_eq!(attack["unexpected"], serde_json::json!({}), "{name}: {report}");
    }
    // The per-address cap held: 64 admitted, the rest refused.
    let flood = report["connection_flood"]["expected"].as_object().unwrap();
    assert!(flood.keys().all(|k| k.starts_with("64 admitted, 36 refused")), "{flood:?}");
    for (role, pid) in &up.roles {
        assert!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), None).is_ok(),
            "the {role} (pid {pid}) died under attack"
        );
    }
}

#[test]
fn the_attacker_stays_on_this_machine_and_names_its_attacks() {
    let pwn = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_pwn")).args(args).output().unwrap();
    let away = pwn(&["attack", "--addr", "192.0.2.1:7100"]);
    assert!(!away.status.success());
    assert!(String::from_utf8_lossy(&away.stderr).contains("loopback"), "{away:?}");
    let dir = tempfile::tempdir().unwrap();
    let up = common::start_up(dir.path(), true);
    let unknown = pwn(&["attack", "--addr", &up.addr, "--data", dir.path().to_str().unwrap(), "--attacks", "nonsense"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no attack is called"), "{unknown:?}");
}
