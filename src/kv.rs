//! `pwn kv`: read and (carefully) clear world state on whichever backend the configuration
//! names. Keys and values are decoded from the tuple layer into readable text, or JSON.
//!
//! A prefix is given as tuple elements under the root `("pwn",)`: `pwn kv scan entities`
//! lists `("pwn", "entities", ...)`, `pwn kv get entities 42` reads `("pwn", "entities", 42)`.
//! Arguments that parse as integers are tuple integers; everything else is a string.

use crate::config::PwnConfig;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use foundationdb_tuple::Element;
use pwn_store::keys::{describe, hex, root};
use pwn_store::limits::RANGE_LIMIT_MAX;
use pwn_store::{RangeOptions, Store, StoreError, open_store};
use std::path::PathBuf;

/// Keys read per transaction when counting or clearing large ranges (keeps each transaction
/// well inside the 5 s and 10 MB limits).
const PAGE_KEYS: usize = 10_000;

/// Flags of `pwn kv`.
#[derive(Args, Debug)]
pub struct KvArgs {
    /// The SQLite store file (overrides `[store] path`; implies the sqlite backend).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Print JSON (one object per line for scan).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Subcommand, Debug)]
enum KvCommand {
    /// Print the value at one key.
    Get {
        /// Tuple elements after "pwn".
        #[arg(required = true)]
        key: Vec<String>,
    },
    /// List keys and values under a prefix, in key order.
    Scan {
        /// Tuple elements after "pwn" (none: everything under "pwn").
        prefix: Vec<String>,
        /// Most key-values to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// From the last key backwards.
        #[arg(long)]
        reverse: bool,
    },
    /// Count the keys under a prefix.
    Count {
        /// Tuple elements after "pwn".
        prefix: Vec<String>,
    },
    /// Delete the key and everything under a prefix. Refuses without --yes.
    Clear {
        /// Tuple elements after "pwn"; at least one (clearing everything is not offered).
        #[arg(required = true)]
        prefix: Vec<String>,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
}

fn element(arg: &str) -> Element<'static> {
    if let Ok(i) = arg.parse::<i64>() { Element::Int(i) } else { Element::String(arg.to_owned().into()) }
}

/// The key bytes of `("pwn", args...)`. Integers above i64's range are packed as u64.
fn tuple_key(args: &[String]) -> Vec<u8> {
    let mut key = root().bytes().to_vec();
    for a in args {
        match a.parse::<u64>() {
            Ok(u) if u > i64::MAX as u64 => key.extend(foundationdb_tuple::pack(&u)),
            _ => key.extend(foundationdb_tuple::pack(&element(a))),
        }
    }
    key
}

/// `[prefix, prefix + 0xff)`: the key itself and every key that extends it as a tuple.
fn prefix_range(args: &[String]) -> (Vec<u8>, Vec<u8>) {
    let begin = tuple_key(args);
    let mut end = begin.clone();
    end.push(0xff);
    (begin, end)
}

/// A value as readable text: a tuple, a 64-bit counter, or hex.
fn describe_value(v: &[u8]) -> String {
    match foundationdb_tuple::unpack::<Vec<Element>>(v) {
        Ok(elements) if !v.is_empty() => pwn_store::keys::format_tuple(&elements),
        _ if v.len() == 8 => format!("int64le {}", i64::from_le_bytes(v.try_into().unwrap_or([0; 8]))),
        _ if v.is_empty() => "(empty)".into(),
        _ => format!("0x{}", hex(v)),
    }
}

fn print_kv(json: bool, k: &[u8], v: &[u8]) {
    if json {
        let o =
            serde_json::json!({"key": describe(k), "value": describe_value(v), "key_hex": hex(k), "value_hex": hex(v)});
        println!("{o}");
    } else {
        println!("{}  =  {}", describe(k), describe_value(v));
    }
}

fn open(cfg: &PwnConfig, args: &KvArgs) -> anyhow::Result<Store> {
    open_configured(cfg, args.db.as_deref())
}

/// The configured store, or the SQLite file `db` if given.
pub fn open_configured(cfg: &PwnConfig, db: Option<&std::path::Path>) -> anyhow::Result<Store> {
    let mut store_cfg = cfg.store.clone();
    if let Some(db) = db {
        store_cfg.backend = pwn_store::BackendKind::Sqlite;
        store_cfg.path = db.to_path_buf();
    }
    open_store(&store_cfg).with_context(|| format!("cannot open the {:?} store", store_cfg.backend))
}

/// Runs `pwn kv`.
pub fn run(cfg: &PwnConfig, args: &KvArgs) -> anyhow::Result<()> {
    let store = open(cfg, args)?;
    match &args.command {
        KvCommand::Get { key } => {
            let k = tuple_key(key);
            match store.transact(|t| t.get(&k))? {
                Some(v) => print_kv(args.json, &k, &v),
                None => bail!("no value at {}", describe(&k)),
            }
        }
        KvCommand::Scan { prefix, limit, reverse } => {
            if *limit > RANGE_LIMIT_MAX {
                bail!("--limit is at most {RANGE_LIMIT_MAX}; page with a narrower prefix");
            }
            let (b, e) = prefix_range(prefix);
            let rows = store.transact(|t| t.get_range(&b, &e, RangeOptions { limit: *limit, reverse: *reverse }))?;
            for (k, v) in &rows {
                print_kv(args.json, k, v);
            }
            if !args.json && rows.len() == *limit {
                eprintln!("(stopped at --limit {limit})");
            }
        }
        KvCommand::Count { prefix } => {
            let (b, e) = prefix_range(prefix);
            let n = store.for_each_page(&b, &e, PAGE_KEYS, |_| {})?;
            if args.json {
                println!("{}", serde_json::json!({"prefix": describe(&b), "count": n}));
            } else {
                println!("{n}");
            }
        }
        KvCommand::Clear { prefix, yes } => {
            let (b, e) = prefix_range(prefix);
            let n = store.for_each_page(&b, &e, PAGE_KEYS, |_| {})?;
            if !yes {
                bail!("refusing to delete {n} keys under {} without --yes", describe(&b));
            }
            // Delete page by page so each transaction stays small, then the rest in one sweep.
            loop {
                let done = store.transact(|t| {
                    let page = t.get_range(&b, &e, RangeOptions { limit: PAGE_KEYS, reverse: false })?;
                    match page.last() {
                        Some((last, _)) => {
                            let mut stop = last.clone();
                            stop.push(0);
                            t.clear_range(&b, &stop)?;
                            Ok::<_, StoreError>(page.len() < PAGE_KEYS)
                        }
                        None => Ok(true),
                    }
                })?;
                if done {
                    break;
                }
            }
            println!("deleted {n} keys under {}", describe(&b));
        }
    }
    Ok(())
}
