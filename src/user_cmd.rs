//! `pwn user add|list|disable|enable|reset-password`: account administration on the store,
//! the same operations players reach through the gateway. Passwords are read from standard
//! input (one line), never from the command line, where other users and shell history see them.

use crate::config::PwnConfig;
use anyhow::Context;
use clap::{Args, Subcommand};
use pwn_gateway::accounts::Accounts;
use pwn_gateway::rules::random_16;
use std::io::BufRead;
use std::path::PathBuf;

/// Sessions opened by the gateway last this long (also the default for `pwn user`).
pub const SESSION_TTL_S: u64 = 24 * 3_600;

/// Flags of `pwn user`.
#[derive(Args, Debug)]
pub struct UserArgs {
    /// The SQLite store file (overrides `[store] path`; implies the sqlite backend).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add {
        /// Username (3-24 letters, digits, '_', '-', '.'; case-insensitive).
        name: String,
    },
    /// List accounts.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (ends its session).
    Disable {
        /// Username.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Username.
        name: String,
    },
    /// Set a new password, read from standard input (ends the account's session).
    ResetPassword {
        /// Username.
        name: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn now_unix_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs `pwn user`.
pub fn run(cfg: &PwnConfig, args: &UserArgs) -> anyhow::Result<()> {
    let store = crate::kv::open_configured(cfg, args.db.as_deref())?;
    let accounts = Accounts::new(store, SESSION_TTL_S);
    match &args.command {
        UserCommand::Add { name } => {
            let password = read_password()?;
            let id = accounts.register(name, &password, random_16()?, now_unix_s())?;
            println!("created {name} (player {id})");
        }
        UserCommand::List { json } => {
            for (name, a) in accounts.list()? {
                if *json {
                    let line = serde_json::json!({
                        "username": name,
                        "player_id": a.player_id,
                        "disabled": a.disabled,
                        "created_unix_s": a.created_unix_s,
                        "logged_in": a.session_hash.is_some(),
                    });
                    println!("{line}");
                } else {
                    let state = if a.disabled {
                        "disabled"
                    } else if a.session_hash.is_some() {
                        "session"
                    } else {
                        "-"
                    };
                    println!("{name:<24} player {:<10} {state}", a.player_id);
                }
            }
        }
        UserCommand::Disable { name } => {
            accounts.set_disabled(name, true)?;
            println!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            accounts.set_disabled(name, false)?;
            println!("enabled {name}");
        }
        UserCommand::ResetPassword { name } => {
            let password = read_password()?;
            accounts.reset_password(name, &password, random_16()?)?;
            println!("new password set for {name}; its session has ended");
        }
    }
    Ok(())
}
