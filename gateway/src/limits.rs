//! Rate limits on governor's GCRA limiters: authentication attempts per source address and for
//! everyone together (applied as a tower layer, `crate::auth`), and game messages per
//! connection (`crate::server`). Time comes from a governor clock: the monotonic clock in the
//! gateway, a `FakeRelativeClock` in tests.
//!
//! Rules:
//! - `[limit-1]` an attempt goes ahead only if its address's limiter allows it and then the
//!   global one does; an address over its own limit takes nothing from the global budget, so
//!   one noisy address cannot spend everyone's;
//! - `[limit-2]` limiters refill continuously at their rate up to their burst (GCRA);
//! - `[limit-3]` at most `ADDRESSES_MAX` addresses are remembered: while the table is full,
//!   every `SWEEP_EVERY` attempts forget the addresses whose limiter is back to full (a sweep
//!   walks the table, so it is not done on every attempt); until one frees room, attempts meet
//!   the global limit alone;
//! - `[limit-4]` an address is an IPv4 address or an IPv6 /64 ([`network_of`]): one host with a
//!   whole /64 to pick from counts once.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::net::IpAddr;

/// The address a limit is keyed by: IPv4 as is, IPv6 by its /64 (an IPv4-mapped IPv6 address
/// as the IPv4 address it carries).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Addresses remembered at once.
pub const ADDRESSES_MAX: usize = 65_536;
/// Attempts between sweeps of a full address table (`[limit-3]`).
pub const SWEEP_EVERY: u64 = 1_024;

/// Rate and burst of a limiter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Attempts allowed per second, on average.
    pub per_s: f64,
    /// Attempts allowed at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    /// The governor quota: one cell every `1 / per_s` seconds (1 ns to 11 days), `burst` cells
    /// at most (at least 1).
    pub fn quota(&self) -> Quota {
        let per_s = if self.per_s.is_finite() && self.per_s > 0.0 { self.per_s } else { 1e-6 };
        let period = Duration::from_secs_f64((1.0 / per_s).clamp(1e-9, 1e6));
        let burst = NonZeroU32::new(self.burst.clamp(1.0, f64::from(u32::MAX)) as u32).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX)).allow_burst(burst)
    }
}

/// Authentication limits (`[limit-1..3]`); safe to share between tasks.
#[derive(Debug)]
pub struct AuthLimits<C: Clock = DefaultClock> {
    per_address: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    global: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    refused: AtomicU64,
    while_full: AtomicU64,
}

impl AuthLimits<DefaultClock> {
    /// Limits of `per_address` for each source address and `global` for all together.
    pub fn new(per_address: Rate, global: Rate) -> Self {
        Self::with_clock(per_address, global, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AuthLimits<C> {
    /// The same limits on `clock`.
    pub fn with_clock(per_address: Rate, global: Rate, clock: C) -> Self {
        Self {
            per_address: RateLimiter::hashmap_with_clock(per_address.quota(), clock.clone()),
            global: RateLimiter::direct_with_clock(global.quota(), clock),
            refused: AtomicU64::new(0),
            while_full: AtomicU64::new(0),
        }
    }

    /// Attempts refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether an attempt from `addr` may go ahead now (`[limit-1]`). An IPv6 address counts by
    /// its /64 (one host's share of a network: a host has the whole /64 to pick from).
    pub fn allow(&self, addr: IpAddr) -> bool {
        let addr = network_of(addr);
        if self.per_address.len() >= ADDRESSES_MAX
            && self.while_full.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY)
        {
            // `[limit-3]`.
            self.per_address.retain_recent();
        }
        let own = self.per_address.len() >= ADDRESSES_MAX || self.per_address.check_key(&addr).is_ok();
        let allowed = own && self.global.check().is_ok();
        if !allowed {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// Addresses remembered now.
    pub fn addresses(&self) -> usize {
        self.per_address.len()
    }
}

/// One connection's game-message limiter.
#[derive(Debug)]
pub struct MessageLimiter<C: Clock = DefaultClock>(RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>);

impl MessageLimiter<DefaultClock> {
    /// A full limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock> MessageLimiter<C> {
    /// A full limiter at `rate` on `clock`.
    pub fn with_clock(rate: Rate, clock: C) -> Self {
        Self(RateLimiter::direct_with_clock(rate.quota(), clock))
    }

    /// Takes a cell if the rate allows one now.
    pub fn allow(&self) -> bool {
        self.0.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn limit_4_an_ipv6_network_counts_as_one_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(network_of(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn limit_1_2_per_address_and_global_limits() {
        let clock = FakeRelativeClock::default();
        let l = AuthLimits::with_clock(Rate { per_s: 1.0, burst: 3.0 }, Rate { per_s: 1.0, burst: 5.0 }, clock.clone());
        assert!((0..3).all(|_| l.allow(ip(1))), "a burst of three");
        assert!(!l.allow(ip(1)), "then one a second");
        assert!(!l.allow(ip(1)), "an address over its limit spends no global budget");
        // A second later the global limiter holds three: others get in until it runs dry.
        clock.advance(Duration::from_secs(1));
        assert!(l.allow(ip(1)));
        assert!(l.allow(ip(2)));
        assert!(l.allow(ip(3)));
        assert!(!l.allow(ip(4)), "global burst spent");
        clock.advance(Duration::from_secs(1));
        assert!(l.allow(ip(4)), "global refills at 1/s");
        assert_eq!(l.refused(), 3);
    }

    #[test]
    fn a_message_limiter_allows_its_burst_then_its_rate() {
        let clock = FakeRelativeClock::default();
        let b = MessageLimiter::with_clock(Rate { per_s: 10.0, burst: 2.0 }, clock.clone());
        assert!(b.allow() && b.allow());
        assert!(!b.allow());
        clock.advance(Duration::from_millis(100));
        assert!(b.allow());
        assert!(!b.allow());
    }

    #[test]
    fn limit_3_the_address_table_is_bounded() {
        let clock = FakeRelativeClock::default();
        let l = AuthLimits::with_clock(Rate { per_s: 1.0, burst: 1.0 }, Rate { per_s: 1e9, burst: 1e9 }, clock.clone());
        for n in 0..(ADDRESSES_MAX as u32 + 10) {
            l.allow(ip(n));
        }
        assert_eq!(l.addresses(), ADDRESSES_MAX);
        // Once their limiters are full again, old addresses are forgotten at the next sweep.
        clock.advance(Duration::from_secs(2));
        for n in 0..SWEEP_EVERY as u32 {
            l.allow(ip(u32::MAX - n));
        }
        assert!(l.addresses() <= SWEEP_EVERY as usize, "{} remembered", l.addresses());
    }

    #[test]
    fn rates_become_quotas_without_panicking() {
        for (per_s, burst) in [(0.0, 0.0), (-1.0, f64::NAN), (f64::INFINITY, 1e12), (1e9, 1e9), (2.0, 10.0)] {
            let q = Rate { per_s, burst }.quota();
            assert!(q.burst_size().get() >= 1);
        }
        assert_eq!(Rate { per_s: 2.0, burst: 10.0 }.quota().replenish_interval(), Duration::from_millis(500));
    }
}
