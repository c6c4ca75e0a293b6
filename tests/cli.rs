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
