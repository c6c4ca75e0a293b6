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
        "duplicates": r.duplicates,
        "losses": r.losses,
        "other": r.other,
        "problems": r.problems,
    })
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
