//! `pwn audit`: the store's consistency check (`pwn_store::audit`) against a live or stopped
//! world: one owner per entity, every item of value once and none lost. Exits non-zero when
//! anything is wrong, so scripts and CI can gate on it.

use crate::config::PwnConfig;
use clap::Args;
use std::path::PathBuf;

/// Flags of `pwn audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The SQLite store file (overrides `[store] path`; implies the sqlite backend).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The audit's verdict as JSON.
pub fn report_json(r: &pwn_store::audit::AuditReport) -> serde_json::Value {
    serde_json::json!({
        "clean": r.clean(),
        "owned_entities": r.owned_entities,
        "owning_cells": r.owning_cells,
        "leaves": r.leaves,
        "leases": r.leases,
        "items": r.items,
        "objects": r.objects,
        "duplicates": r.duplicates,
        "losses": r.losses,
        "other": r.other,
        "problems": r.problems,
    })
}

/// Audits the SQLite store at `path` (a load test's post-run check).
pub fn audit_sqlite(path: &std::path::Path) -> anyhow::Result<pwn_store::audit::AuditReport> {
    // Opening creates a missing file: an empty store, which audits clean. A path that names
    // no store (a typo, a world keeping its store elsewhere) is an error, not a clean audit.
    if !path.is_file() {
        anyhow::bail!("no store to audit at {}", path.display());
    }
    let store = pwn_store::open_store(&pwn_store::StoreConfig {
        backend: pwn_store::BackendKind::Sqlite,
        path: path.to_path_buf(),
        ..pwn_store::StoreConfig::default()
    })?;
    Ok(store.transact(|t| pwn_store::audit::audit(t))?)
}

/// The keys [`summarize`] adds.
pub const SUMMARY_KEYS: [&str; 4] = ["audit_clean", "duplicates", "losses", "audit"];
/// Those of [`SUMMARY_KEYS`] that are figures a threshold can compare (`audit` is an object).
pub const FIGURE_KEYS: [&str; 3] = ["audit_clean", "duplicates", "losses"];

/// Adds a post-run audit's verdict to a load test's summary (`audit_clean`, `duplicates`,
/// `losses`, `audit`) and prints it; `None` (not run) adds `audit_clean: null`.
pub fn summarize(r: Option<&pwn_store::audit::AuditReport>, json: &mut serde_json::Map<String, serde_json::Value>) {
    match r {
        Some(r) => {
            println!("  {:<34} {:>12}", "store audit", if r.clean() { "clean" } else { "PROBLEMS" });
            for p in r.problems.iter().take(5) {
                println!("  - {p}");
            }
            json.insert("audit_clean".into(), r.clean().into());
            json.insert("duplicates".into(), r.duplicates.into());
            json.insert("losses".into(), r.losses.into());
            json.insert("audit".into(), report_json(r));
        }
        None => {
            println!("  {:<34} {:>12}", "store audit", "not run");
            json.insert("audit_clean".into(), serde_json::Value::Null);
        }
    }
}

/// Runs the audit; an error when the store is inconsistent.
pub fn run(cfg: &PwnConfig, args: &AuditArgs) -> anyhow::Result<()> {
    let store = crate::kv::open_configured(cfg, args.db.as_deref())?;
    let r = store.transact(|t| pwn_store::audit::audit(t))?;
    if args.json {
        println!("{}", report_json(&r));
    } else {
        println!("pwn audit: {}", if r.clean() { "clean" } else { "PROBLEMS FOUND" });
        println!("  entities with an owner   {:>10}", r.owned_entities);
        println!("  cells owning entities    {:>10}", r.owning_cells);
        println!("  cells / leases           {:>4} / {:<4}", r.leaves, r.leases);
        println!("  items of value           {:>10}", r.items);
        println!("  world objects            {:>10}", r.objects);
        println!("  duplicates               {:>10}", r.duplicates);
        println!("  losses                   {:>10}", r.losses);
        println!("  other problems           {:>10}", r.other);
        for p in &r.problems {
            println!("  - {p}");
        }
    }
    if !r.clean() {
        anyhow::bail!("the store is inconsistent: {} duplicates, {} losses, {} other", r.duplicates, r.losses, r.other);
    }
    Ok(())
}
