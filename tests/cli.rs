//! End-to-end checks of the `pwn` binary as an operator runs it.

use std::process::Command;

fn pwn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pwn")).args(args).output().expect("run pwn")
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn headless_runs_are_reproducible_across_processes() {
    let args = ["sim", "--characters", "8", "--ticks", "90", "--seed", "5", "--json"];
    let a = pwn(&args);
    let b = pwn(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let (ja, jb) = (last_json(&a), last_json(&b));
    assert_eq!(ja["state_hash"], jb["state_hash"]);
    assert_eq!(ja["ticks"], 90);
    let c = pwn(&["sim", "--characters", "8", "--ticks", "90", "--seed", "6", "--json"]);
    assert_ne!(ja["state_hash"], last_json(&c)["state_hash"]);
}

#[test]
fn a_bad_config_or_world_file_is_a_clear_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("pwn-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[sim]\ntick_hz = 100000\n").unwrap();
    let out = pwn(&["--config", cfg.to_str().unwrap(), "sim", "--ticks", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tick_hz") && !err.contains("panicked"), "{err}");

    let world = dir.join("world.toml");
    std::fs::write(&world, "name = \"x\"\norigin_m = [0.0, 0.0]\nsize_m = [10.0, 10.0]\nspawn_points = []\n").unwrap();
    let out = pwn(&["sim", "--world", world.to_str().unwrap(), "--ticks", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spawn points") && !err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_benchmark_prints_its_json_keys() {
    let out = pwn(&["bench", "sim", "--players", "20", "--ticks", "10", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j = last_json(&out);
    for key in ["players", "tick_ms_p50", "tick_ms_p99", "baseline_tick_ms_p99", "ratio_vs_rapier_kcc"] {
        assert!(!j[key].is_null(), "missing {key} in {j}");
    }
    assert_eq!(j["players"], 20);
}

#[test]
fn kv_reads_decoded_tuples_and_clears_only_with_yes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.sqlite");
    let db = db.to_str().unwrap();
    let out = pwn(&["bench", "store", "--db", db, "--transactions", "2", "--batch", "3", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(last_json(&out)["entities"], 6);

    let scan = pwn(&["kv", "--db", db, "scan", "entities", "--json"]);
    assert!(scan.status.success());
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&scan.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[2]["key"], "(\"pwn\", \"entities\", 2)");
    assert!(rows[2]["value"].as_str().unwrap().starts_with("(1, 2, "), "{}", rows[2]["value"]);

    let get = pwn(&["kv", "--db", db, "get", "schema"]);
    assert!(String::from_utf8_lossy(&get.stdout).contains("=  (1,)"), "{}", String::from_utf8_lossy(&get.stdout));
    let missing = pwn(&["kv", "--db", db, "get", "entities", "999"]);
    assert!(!missing.status.success());

    let refused = pwn(&["kv", "--db", db, "clear", "entities"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without --yes"));
    let count = |prefix: &str| {
        let out = pwn(&["kv", "--db", db, "count", prefix]);
        String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap()
    };
    assert_eq!(count("entities"), 6, "a refused clear deleted something");
    assert!(pwn(&["kv", "--db", db, "clear", "entities", "--yes"]).status.success());
    assert_eq!(count("entities"), 0);
    assert_eq!(count("entity_at"), 6, "clearing one subspace touched another");
}

#[test]
fn the_transport_benchmark_prints_its_json_keys() {
    let out = pwn(&["bench", "transport", "--pings", "20", "--messages", "100", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j = last_json(&out);
    for key in ["stream_rtt_us_p50", "datagram_rtt_us_p50", "udp_rtt_us_p50", "ratio_datagram_vs_udp"] {
        assert!(j[key].as_f64().is_some_and(|v| v > 0.0), "missing or zero {key} in {j}");
    }
}

fn pwn_with_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwn"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pwn");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_administration_on_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pwn.sqlite");
    let db = db.to_str().unwrap();
    let added = pwn_with_stdin(&["user", "--db", db, "add", "Alice"], "correct horse battery\n");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(String::from_utf8_lossy(&added.stdout).contains("player 1"));
    let again = pwn_with_stdin(&["user", "--db", db, "add", "alice"], "correct horse battery\n");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("taken"));
    let weak = pwn_with_stdin(&["user", "--db", db, "add", "bob"], "short\n");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("passwords are 10 to 128 bytes"));
    assert!(pwn(&["user", "--db", db, "disable", "alice"]).status.success());
    let listed = pwn(&["user", "--db", db, "list", "--json"]);
    let row = last_json(&listed);
    assert_eq!(row["username"], "alice");
    assert_eq!(row["disabled"], true);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("argon2"), "hashes are never printed");
    let missing = pwn(&["user", "--db", db, "enable", "nobody"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account"));
    let reset = pwn_with_stdin(&["user", "--db", db, "reset-password", "alice"], "another long passphrase\n");
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
}

#[test]
fn login_and_proxy_benchmarks_report_their_keys() {
    let login = pwn(&["bench", "login", "--count", "5", "--accounts", "2", "--rate", "50", "--json"]);
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    let j = last_json(&login);
    assert!(
        j["login_ms_p50"].as_f64().unwrap() > 0.0
            && j["login_ms_p99"].as_f64().unwrap() >= j["login_ms_p50"].as_f64().unwrap()
    );
    assert_eq!(j["logins_per_s"], 50.0);
    let proxy = pwn(&["bench", "proxy", "--pings", "20", "--json"]);
    assert!(proxy.status.success(), "{}", String::from_utf8_lossy(&proxy.stderr));
    let j = last_json(&proxy);
    for key in ["direct_ms_p50", "gateway_ms_p50", "added_ms_p50"] {
        assert!(j[key].is_number(), "{key} missing: {j}");
    }
    assert!(j["gateway_ms_p50"].as_f64().unwrap() > 0.0);
}
