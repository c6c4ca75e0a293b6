//! Accounts and sessions in the store. Synchronous (the store is), and slow where argon2 is:
//! the async gateway runs these on its bounded hashing pool (`crate::pool`). Time, salts and
//! tokens come from the caller, so tests are deterministic.
//!
//! Rules (beside `crate::rules`):
//! - `[sess-1]` one active session per account: a login replaces the previous session in the
//!   same transaction, and says so, so the gateway can end the old connection (no duplicate
//!   logins, no item duplication through two sessions);
//! - `[sess-2]` a session is valid while its record exists, it has not expired, the account
//!   still names it as its session, and the account is not disabled; logout, password reset
//!   and disabling revoke it;
//! - `[sess-3]` a failed login never says which half was wrong, and an unknown username costs
//!   the same argon2 work as a wrong password, so timing does not tell either;
//! - `[sess-4]` player ids come from a counter in the store, allocated in the registering
//!   transaction: a name and its player id are created together or not at all;
//! - `[sess-5]` a new account receives the starter kit ([`STARTER_KIT`]) in the registering
//!   transaction: items of value only ever come into being inside a store transaction;
//! - `[sess-6]` a live connection's session is re-checked against the store every
//!   `crate::server::SESSION_CHECK_INTERVAL` (2 s) by the gateway holding it
//!   ([`Accounts::still_valid`]): logging out, logging in at any gateway, disabling the account
//!   or resetting its password ends the old connection within that bound, wherever it is. A
//!   session's expiry only bounds resuming with its token: it does not end a live connection.

use crate::rules::{RuleError, check_password, fold_username, hash_password, token_hash, verify_password};
use foundationdb_tuple::{Bytes, pack, unpack};
use pwn_store::keys::{account_key, session_key, subspace};
use pwn_store::{AsStoreError, RangeOptions, Store, StoreError};
use std::sync::OnceLock;

/// Sessions read per transaction when a gateway re-checks its live ones.
pub const SESSIONS_PER_CHECK_TXN: usize = 1_000;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username or password breaks the rules.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The username is taken.
    #[error("that username is taken")]
    NameTaken,
    /// Unknown user or wrong password (`[sess-3]`).
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    /// The account is disabled (only said after a correct password).
    #[error("this account is disabled")]
    Disabled,
    /// The session is unknown, expired or revoked.
    #[error("the session is unknown, expired or revoked")]
    SessionInvalid,
    /// No such account (admin operations).
    #[error("no account {0:?}")]
    NoSuchAccount(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A stored record could not be read.
    #[error("stored record unreadable: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AsStoreError for AccountError {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// An account as stored under `("pwn", "accounts", folded_username)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// The player's global id.
    pub player_id: u64,
    /// The argon2id PHC string.
    pub password_phc: String,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// When it was created, Unix seconds.
    pub created_unix_s: u64,
    /// The hash of the current session's token, if any (`[sess-1]`).
    pub session_hash: Option<[u8; 32]>,
}

impl AccountRecord {
    const FORMAT: i64 = 1;

    /// Stored form: `(1, player_id, phc, disabled, created_unix_s, session_hash or b"")`.
    pub fn encode(&self) -> Vec<u8> {
        let session: &[u8] = self.session_hash.as_ref().map_or(&[], |h| h.as_slice());
        pack(&(
            Self::FORMAT,
            self.player_id,
            self.password_phc.as_str(),
            self.disabled,
            self.created_unix_s,
            Bytes::from(session),
        ))
    }

    /// Reads the stored form.
    pub fn decode(value: &[u8]) -> Result<Self, AccountError> {
        type Stored<'a> = (i64, u64, String, bool, u64, Bytes<'a>);
        let (format, player_id, password_phc, disabled, created_unix_s, session): Stored<'_> =
            unpack(value).map_err(|e| AccountError::Corrupt(e.to_string()))?;
        if format != Self::FORMAT {
            return Err(AccountError::Corrupt(format!("account format {format}")));
        }
        let session_hash = match session.0.len() {
            0 => None,
            32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&session.0);
                Some(h)
            }
            n => return Err(AccountError::Corrupt(format!("session hash of {n} bytes"))),
        };
        Ok(Self { player_id, password_phc, disabled, created_unix_s, session_hash })
    }
}

/// A session as stored under `("pwn", "sessions", sha256(token))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Whose.
    pub player_id: u64,
    /// The account's folded username.
    pub username: String,
    /// When it expires, Unix seconds.
    pub expires_unix_s: u64,
}

impl SessionRecord {
    const FORMAT: i64 = 1;

    /// Stored form: `(1, player_id, username, expires_unix_s)`.
    pub fn encode(&self) -> Vec<u8> {
        pack(&(Self::FORMAT, self.player_id, self.username.as_str(), self.expires_unix_s))
    }

    /// Reads the stored form.
    pub fn decode(value: &[u8]) -> Result<Self, AccountError> {
        let (format, player_id, username, expires_unix_s): (i64, u64, String, u64) =
            unpack(value).map_err(|e| AccountError::Corrupt(e.to_string()))?;
        if format != Self::FORMAT {
            return Err(AccountError::Corrupt(format!("session format {format}")));
        }
        Ok(Self { player_id, username, expires_unix_s })
    }
}

/// A logged-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The player.
    pub player_id: u64,
    /// The account's folded username.
    pub username: String,
    /// When it expires, Unix seconds.
    pub expires_unix_s: u64,
    /// Whether an older session of the account was ended by this login (`[sess-1]`).
    pub replaced: Option<[u8; 32]>,
}

/// Accounts and sessions over a store.
#[derive(Clone, Debug)]
pub struct Accounts {
    store: Store,
    session_ttl_s: u64,
}

/// A hash nobody's password matches, verified against for unknown users (`[sess-3]`).
fn decoy_phc() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("no account has this password", [7; 16]).unwrap_or_default())
}

/// The item kinds every new account starts with (`[sess-5]`; names in
/// `pwn_proto::item_kind_name`).
pub const STARTER_KIT: [u32; 3] = [pwn_proto::ITEM_TORCH, pwn_proto::ITEM_MAP, pwn_proto::ITEM_COIN_POUCH];

/// Player ids are allocated from this counter.
const PLAYER_ID_COUNTER: &str = "player_id";

impl Accounts {
    /// Accounts in `store`; sessions last `session_ttl_s`.
    pub fn new(store: Store, session_ttl_s: u64) -> Self {
        Self { store, session_ttl_s }
    }

    fn read_account(t: &mut dyn pwn_store::Transaction, folded: &str) -> Result<Option<AccountRecord>, AccountError> {
        t.get(&account_key(folded))?.map(|v| AccountRecord::decode(&v)).transpose()
    }

    /// Creates an account (`[acct-1..3]`, `[sess-4]`); returns its player id.
    pub fn register(
        &self,
        username: &str,
        password: &str,
        salt: [u8; 16],
        now_unix_s: u64,
    ) -> Result<u64, AccountError> {
        let folded = fold_username(username)?;
        check_password(password)?;
        // The slow part outside the transaction: a transaction must stay short.
        let password_phc = hash_password(password, salt).map_err(AccountError::Hash)?;
        self.store.transact(|t| {
            if Self::read_account(t, &folded)?.is_some() {
                return Err(AccountError::NameTaken);
            }
            let player_id = pwn_store::counters::next_id(t, PLAYER_ID_COUNTER).map_err(|e| match e {
                pwn_store::StoreError::Decode { .. } => AccountError::Corrupt("player id counter".into()),
                other => AccountError::Store(other),
            })?;
            let record = AccountRecord {
                player_id,
                password_phc: password_phc.clone(),
                disabled: false,
                created_unix_s: now_unix_s,
                session_hash: None,
            };
            t.set(&account_key(&folded), &record.encode())?;
            for kind in STARTER_KIT {
                pwn_store::items::create(t, player_id, kind).map_err(|e| match e {
                    pwn_store::items::ItemError::Store(e) => AccountError::Store(e),
                    other => AccountError::Corrupt(format!("starter kit: {other}")),
                })?;
            }
            Ok(player_id)
        })
    }

    /// Checks a password and opens a session with `token`, replacing any other session of the
    /// account (`[sess-1]`, `[sess-3]`).
    pub fn login(
        &self,
        username: &str,
        password: &str,
        token: [u8; 16],
        now_unix_s: u64,
    ) -> Result<Session, AccountError> {
        // Malformed names and passwords get the same answer as wrong ones, after the same work.
        let folded = fold_username(username).ok();
        let plausible = folded.is_some() && check_password(password).is_ok();
        let record = match (&folded, plausible) {
            (Some(f), true) => self.store.transact(|t| Self::read_account(t, f))?,
            _ => None,
        };
        let phc = record.as_ref().map_or(decoy_phc(), |r| r.password_phc.as_str());
        let matches = verify_password(password, phc);
        let (Some(folded), Some(record), true) = (folded, record, matches) else {
            return Err(AccountError::InvalidCredentials);
        };
        if record.disabled {
            return Err(AccountError::Disabled);
        }
        self.open_session(&folded, Some(&record.password_phc), token, now_unix_s)
    }

    /// Opens a session with `token` for an account whose password was just set by the caller
    /// (registration), replacing any other session (`[sess-1]`).
    pub fn start_session(&self, username: &str, token: [u8; 16], now_unix_s: u64) -> Result<Session, AccountError> {
        let folded = fold_username(username)?;
        self.open_session(&folded, None, token, now_unix_s)
    }

    /// The session transaction of login and registration: replaces any older session. With
    /// `verified_phc`, the account must still have that password (it may have changed while
    /// the caller hashed).
    fn open_session(
        &self,
        folded: &str,
        verified_phc: Option<&str>,
        token: [u8; 16],
        now_unix_s: u64,
    ) -> Result<Session, AccountError> {
        let hash = token_hash(&token);
        let expires_unix_s = now_unix_s.saturating_add(self.session_ttl_s);
        self.store.transact(|t| {
            let Some(mut current) = Self::read_account(t, folded)? else {
                return Err(AccountError::InvalidCredentials);
            };
            if verified_phc.is_some_and(|phc| phc != current.password_phc) {
                return Err(AccountError::InvalidCredentials);
            }
            if current.disabled {
                return Err(AccountError::Disabled);
            }
            let replaced = current.session_hash.replace(hash);
            if let Some(old) = replaced {
                t.clear(&session_key(&old))?;
            }
            t.set(&account_key(folded), &current.encode())?;
            let session = SessionRecord { player_id: current.player_id, username: folded.to_owned(), expires_unix_s };
            t.set(&session_key(&hash), &session.encode())?;
            Ok(Session { player_id: current.player_id, username: folded.to_owned(), expires_unix_s, replaced })
        })
    }

    /// The session `token` names, if still valid (`[sess-2]`).
    pub fn resume(&self, token: &[u8; 16], now_unix_s: u64) -> Result<Session, AccountError> {
        let hash = token_hash(token);
        self.store.transact(|t| {
            let Some(v) = t.get(&session_key(&hash))? else { return Err(AccountError::SessionInvalid) };
            let s = SessionRecord::decode(&v)?;
            let account = Self::read_account(t, &s.username)?;
            let valid = s.expires_unix_s > now_unix_s
                && account.as_ref().is_some_and(|a| a.session_hash == Some(hash) && !a.disabled);
            if !valid {
                return Err(AccountError::SessionInvalid);
            }
            Ok(Session {
                player_id: s.player_id,
                username: s.username,
                expires_unix_s: s.expires_unix_s,
                replaced: None,
            })
        })
    }

    /// Which of `tokens` name sessions nobody revoked (`[sess-6]`): the record exists, the
    /// account still names it and is not disabled. Expiry is not checked: it bounds how long a
    /// token may be used to resume, not how long a live connection may play. Read in
    /// transactions of at most `SESSIONS_PER_CHECK_TXN`.
    pub fn still_valid(&self, tokens: &[[u8; 16]]) -> Result<Vec<bool>, AccountError> {
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(SESSIONS_PER_CHECK_TXN) {
            let valid = self.store.transact(|t| {
                let mut valid = Vec::with_capacity(chunk.len());
                for token in chunk {
                    let hash = token_hash(token);
                    let ok = match t.get(&session_key(&hash))? {
                        None => false,
                        Some(v) => {
                            let s = SessionRecord::decode(&v)?;
                            let account = Self::read_account(t, &s.username)?;
                            account.as_ref().is_some_and(|a| a.session_hash == Some(hash) && !a.disabled)
                        }
                    };
                    valid.push(ok);
                }
                Ok::<_, AccountError>(valid)
            })?;
            out.extend(valid);
        }
        Ok(out)
    }

    /// Ends the session `token` names (idempotent).
    pub fn logout(&self, token: &[u8; 16]) -> Result<(), AccountError> {
        let hash = token_hash(token);
        self.store.transact(|t| {
            let Some(v) = t.get(&session_key(&hash))? else { return Ok(()) };
            let s = SessionRecord::decode(&v)?;
            t.clear(&session_key(&hash))?;
            if let Some(mut a) = Self::read_account(t, &s.username)?
                && a.session_hash == Some(hash)
            {
                a.session_hash = None;
                t.set(&account_key(&s.username), &a.encode())?;
            }
            Ok(())
        })
    }

    /// Every account, in username order (admin).
    pub fn list(&self) -> Result<Vec<(String, AccountRecord)>, AccountError> {
        let (b, e) = subspace("accounts").range();
        let rows = self.store.transact(|t| t.get_range(&b, &e, RangeOptions::default()))?;
        rows.iter()
            .map(|(k, v)| {
                let (_, _, name): (String, String, String) =
                    unpack(k).map_err(|e| AccountError::Corrupt(e.to_string()))?;
                Ok((name, AccountRecord::decode(v)?))
            })
            .collect()
    }

    fn update(&self, username: &str, change: impl Fn(&mut AccountRecord)) -> Result<(), AccountError> {
        let folded = fold_username(username)?;
        self.store.transact(|t| {
            let Some(mut a) = Self::read_account(t, &folded)? else {
                return Err(AccountError::NoSuchAccount(folded.clone()));
            };
            change(&mut a);
            // Every admin change revokes the current session (`[sess-2]`).
            if let Some(old) = a.session_hash.take() {
                t.clear(&session_key(&old))?;
            }
            t.set(&account_key(&folded), &a.encode())?;
            Ok(())
        })
    }

    /// Disables or re-enables an account (admin); ends its session.
    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), AccountError> {
        self.update(username, |a| a.disabled = disabled)
    }

    /// Sets a new password (admin); ends the account's session.
    pub fn reset_password(&self, username: &str, password: &str, salt: [u8; 16]) -> Result<(), AccountError> {
        check_password(password)?;
        let phc = hash_password(password, salt).map_err(AccountError::Hash)?;
        self.update(username, |a| a.password_phc = phc.clone())
    }
}
