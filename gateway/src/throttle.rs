//! Per-account login throttling (`[gw-7]`): failed logins against one account slow further
//! attempts on it down, progressively, instead of locking it (OWASP's guidance: a hard lockout
//! would let an attacker lock the owner out). Pure: the caller passes the time.
//!
//! The first `FREE_FAILURES` failures cost nothing; each further one makes the account wait
//! twice as long as the last before the next attempt is even hashed, from 1 s up to
//! `WAIT_MAX`. Attempts not answered yet count as failures ([`AccountThrottle::reserve`]), so
//! guesses sent at once get no more through than guesses sent one after another. Attempts during the wait are refused at once, without hashing, so a flood on one
//! account costs the gateway almost no CPU. A successful login clears the account's record.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Failed logins an account may have before it is slowed down.
pub const FREE_FAILURES: u32 = 5;
/// Longest wait between attempts on one account.
pub const WAIT_MAX: Duration = Duration::from_secs(30);
/// Accounts tracked at once; records idle for `FORGET_AFTER` are dropped first, and beyond the
/// bound new accounts go untracked (the global and per-address limits still apply).
pub const ACCOUNTS_TRACKED_MAX: usize = 100_000;
/// A record with no failure for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Copy, Clone, Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    next_allowed: Instant,
    /// Attempts let through and not answered yet: they count as failures until they are, so
    /// guesses sent at once cannot all pass the check before the first is answered.
    in_flight: u32,
}

/// The throttle.
#[derive(Debug, Default)]
pub struct AccountThrottle {
    accounts: HashMap<String, Record>,
}

impl AccountThrottle {
    /// Whether `account` may try now; `Err` with how long it must still wait.
    pub fn check(&self, account: &str, now: Instant) -> Result<(), Duration> {
        match self.accounts.get(account) {
            Some(r) if r.next_allowed > now => Err(r.next_allowed - now),
            Some(r) if r.failures + r.in_flight >= FREE_FAILURES && r.in_flight > 0 => Err(Duration::from_secs(1)),
            _ => Ok(()),
        }
    }

    /// Lets one attempt on `account` through if [`AccountThrottle::check`] allows it, counting
    /// it in flight until [`AccountThrottle::failed`] or [`AccountThrottle::succeeded`] (or
    /// [`AccountThrottle::answered`]) says how it ended.
    pub fn reserve(&mut self, account: &str, now: Instant) -> Result<(), Duration> {
        self.check(account, now)?;
        if !self.accounts.contains_key(account) && self.accounts.len() >= ACCOUNTS_TRACKED_MAX {
            self.accounts
                .retain(|_, r| r.in_flight > 0 || now.saturating_duration_since(r.last_failure) < FORGET_AFTER);
            if self.accounts.len() >= ACCOUNTS_TRACKED_MAX {
                return Ok(());
            }
        }
        let r = self.accounts.entry(account.to_owned()).or_insert(Record {
            failures: 0,
            last_failure: now,
            next_allowed: now,
            in_flight: 0,
        });
        r.in_flight += 1;
        Ok(())
    }

    /// An attempt let through by [`AccountThrottle::reserve`] ended neither as a failure nor
    /// a success (refused for another reason).
    pub fn answered(&mut self, account: &str) {
        if let Some(r) = self.accounts.get_mut(account) {
            r.in_flight = r.in_flight.saturating_sub(1);
            if r.in_flight == 0 && r.failures == 0 {
                self.accounts.remove(account);
            }
        }
    }

    /// A login for `account` failed at `now`.
    pub fn failed(&mut self, account: &str, now: Instant) {
        if !self.accounts.contains_key(account) && self.accounts.len() >= ACCOUNTS_TRACKED_MAX {
            self.accounts
                .retain(|_, r| r.in_flight > 0 || now.saturating_duration_since(r.last_failure) < FORGET_AFTER);
            if self.accounts.len() >= ACCOUNTS_TRACKED_MAX {
                return;
            }
        }
        let r = self.accounts.entry(account.to_owned()).or_insert(Record {
            failures: 0,
            last_failure: now,
            next_allowed: now,
            in_flight: 0,
        });
        r.in_flight = r.in_flight.saturating_sub(1);
        if now.saturating_duration_since(r.last_failure) >= FORGET_AFTER {
            r.failures = 0;
        }
        r.failures += 1;
        r.last_failure = now;
        r.next_allowed = match r.failures.checked_sub(FREE_FAILURES + 1) {
            None => now,
            Some(k) => now + Duration::from_secs(1u64 << k.min(5)).min(WAIT_MAX),
        };
    }

    /// A login for `account` succeeded: its record is cleared.
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.remove(account);
    }

    /// Accounts tracked now.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account is tracked.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gw_7_failures_slow_one_account_down_progressively_and_success_clears_it() {
        let mut t = AccountThrottle::default();
        let t0 = Instant::now();
        for i in 0..FREE_FAILURES {
            assert_eq!(t.check("alice", t0), Ok(()), "free failure {i}");
            t.failed("alice", t0);
        }
        assert_eq!(t.check("alice", t0), Ok(()), "five failures are free");
        t.failed("alice", t0);
        assert_eq!(t.check("alice", t0), Err(Duration::from_secs(1)));
        assert_eq!(t.check("bob", t0), Ok(()), "other accounts are not slowed");
        let mut at = t0 + Duration::from_secs(1);
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert_eq!(t.check("alice", at), Ok(()));
            t.failed("alice", at);
            let wait = t.check("alice", at).unwrap_err();
            waits.push(wait.as_secs());
            at += wait;
        }
        assert_eq!(waits, vec![2, 4, 8, 16, 30, 30, 30, 30], "doubling, capped");
        t.succeeded("alice");
        assert_eq!(t.check("alice", at), Ok(()));
        assert!(t.is_empty());
        // Failures long apart start over.
        let later = at + FORGET_AFTER;
        for _ in 0..FREE_FAILURES {
            t.failed("carol", at);
        }
        t.failed("carol", later);
        assert_eq!(t.check("carol", later), Ok(()), "an old streak is forgotten");
    }

    #[test]
    fn gw_7_guesses_sent_at_once_get_no_more_through() {
        let mut t = AccountThrottle::default();
        let t0 = Instant::now();
        let through = (0..20).filter(|_| t.reserve("alice", t0).is_ok()).count();
        assert_eq!(through, FREE_FAILURES as usize, "only the free attempts are let through at once");
        for _ in 0..through {
            t.failed("alice", t0);
        }
        assert!(t.reserve("alice", t0).is_ok(), "then one at a time");
        assert!(t.reserve("alice", t0).is_err());
        t.failed("alice", t0);
        assert_eq!(t.check("alice", t0), Err(Duration::from_secs(1)));
        // An attempt refused for another reason gives its place back.
        assert!(t.reserve("bob", t0).is_ok());
        t.answered("bob");
        assert!(t.is_empty() || t.check("bob", t0).is_ok());
    }
}
