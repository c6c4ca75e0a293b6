//! Accounts and sessions against the real store backends (memory and SQLite): registration
//! rules, non-revealing login failures, one session per account, resume, logout, expiry, and
//! the admin changes that revoke sessions.

use pwn_gateway::accounts::{AccountError, Accounts};
use pwn_store::{MemoryBackend, SqliteBackend, Store};
use std::sync::Arc;

const TTL_S: u64 = 3_600;
const PASSWORD: &str = "correct horse battery";

fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::new(Arc::new(SqliteBackend::open(dir.path().join("pwn.sqlite")).unwrap()));
    vec![(Store::new(Arc::new(MemoryBackend::new())), None), (sqlite, Some(dir))]
}

#[test]
fn registration_follows_the_rules_and_names_are_unique_case_folded() {
    for (store, _dir) in stores() {
        let a = Accounts::new(store.clone(), TTL_S);
        let id = a.register("Alice", PASSWORD, [1; 16], 100).unwrap();
        assert_eq!(id, 1);
        // The starter kit came into being in the registering transaction (`[sess-5]`).
        let kit: Vec<u32> =
            store.transact(|t| pwn_store::items::inventory(t, id)).unwrap().iter().map(|(_, r)| r.kind).collect();
        assert_eq!(kit, pwn_gateway::accounts::STARTER_KIT.to_vec());
        assert_eq!(a.register("bob", PASSWORD, [2; 16], 100).unwrap(), 2, "ids count up from the store");
        assert!(matches!(a.register("ALICE", PASSWORD, [3; 16], 100), Err(AccountError::NameTaken)));
        assert!(matches!(a.register("a b", PASSWORD, [3; 16], 100), Err(AccountError::Rule(_))));
        assert!(matches!(a.register("carol", "short", [3; 16], 100), Err(AccountError::Rule(_))));
        assert!(matches!(a.register("carol", &"x".repeat(129), [3; 16], 100), Err(AccountError::Rule(_))));
        let (b, e) = pwn_store::keys::subspace("items").range();
        let all = store.transact(|t| t.get_range(&b, &e, pwn_store::RangeOptions::default())).unwrap();
        assert_eq!(all.len(), 2 * pwn_gateway::accounts::STARTER_KIT.len(), "refused registrations created no items");
        let listed = a.list().unwrap();
        assert_eq!(listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
        assert!(listed.iter().all(|(_, r)| r.password_phc.starts_with("$argon2id$")), "only hashes are stored");
    }
}

#[test]
fn failed_logins_do_not_say_which_half_was_wrong() {
    for (store, _dir) in stores() {
        let a = Accounts::new(store, TTL_S);
        a.register("alice", PASSWORD, [1; 16], 100).unwrap();
        for (user, pw) in [("alice", "wrong password!"), ("nobody", PASSWORD), ("a b", PASSWORD), ("alice", "x")] {
            let e = a.login(user, pw, [9; 16], 200).unwrap_err();
            assert!(matches!(e, AccountError::InvalidCredentials), "{user}: {e}");
            assert_eq!(e.to_string(), "unknown user or wrong password");
        }
        assert_eq!(a.login("ALICE", PASSWORD, [9; 16], 200).unwrap().player_id, 1);
    }
}

#[test]
fn one_session_per_account_and_tokens_end_at_logout_or_expiry() {
    for (store, _dir) in stores() {
        let a = Accounts::new(store, TTL_S);
        a.register("alice", PASSWORD, [1; 16], 100).unwrap();
        let first = a.login("alice", PASSWORD, [1; 16], 200).unwrap();
        assert_eq!(first.replaced, None);
        assert_eq!(a.resume(&[1; 16], 201).unwrap().player_id, 1);
        // A second login kicks the first session.
        let second = a.login("alice", PASSWORD, [2; 16], 300).unwrap();
        assert!(second.replaced.is_some());
        assert!(matches!(a.resume(&[1; 16], 301), Err(AccountError::SessionInvalid)));
        assert_eq!(a.resume(&[2; 16], 301).unwrap().username, "alice");
        // Expiry.
        assert!(matches!(a.resume(&[2; 16], 300 + TTL_S), Err(AccountError::SessionInvalid)));
        // Logout revokes; logging out twice is harmless.
        a.logout(&[2; 16]).unwrap();
        a.logout(&[2; 16]).unwrap();
        assert!(matches!(a.resume(&[2; 16], 302), Err(AccountError::SessionInvalid)));
        assert!(matches!(a.resume(&[3; 16], 302), Err(AccountError::SessionInvalid)), "a token never issued");
    }
}

#[test]
fn admin_changes_revoke_sessions() {
    for (store, _dir) in stores() {
        let a = Accounts::new(store, TTL_S);
        a.register("alice", PASSWORD, [1; 16], 100).unwrap();
        a.login("alice", PASSWORD, [1; 16], 200).unwrap();
        a.set_disabled("alice", true).unwrap();
        assert!(matches!(a.resume(&[1; 16], 201), Err(AccountError::SessionInvalid)));
        assert!(matches!(a.login("alice", PASSWORD, [2; 16], 202), Err(AccountError::Disabled)));
        assert!(matches!(a.login("alice", "wrong password!", [2; 16], 202), Err(AccountError::InvalidCredentials)));
        a.set_disabled("alice", false).unwrap();
        a.login("alice", PASSWORD, [2; 16], 203).unwrap();
        a.reset_password("alice", "a brand new passphrase", [5; 16]).unwrap();
        assert!(matches!(a.resume(&[2; 16], 204), Err(AccountError::SessionInvalid)));
        assert!(matches!(a.login("alice", PASSWORD, [3; 16], 205), Err(AccountError::InvalidCredentials)));
        assert!(a.login("alice", "a brand new passphrase", [3; 16], 205).is_ok());
        assert!(matches!(a.set_disabled("nobody", true), Err(AccountError::NoSuchAccount(_))));
    }
}
