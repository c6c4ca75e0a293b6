//! Rate limits on authentication: a token bucket per source address and one for everyone.
//! Pure: time comes from the caller. The per-address table is bounded: when full, the
//! stalest bucket is forgotten (an attacker rotating addresses only ever meets the global
//! bucket, which is the point of having one).
//!
//! Rules:
//! - `[limit-1]` an attempt is allowed only if both its address's bucket and the global bucket
//!   hold a token; it then takes one from each;
//! - `[limit-2]` buckets refill continuously at their rate up to their burst;
//! - `[limit-3]` at most `ADDRESSES_MAX` addresses are remembered.

use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses remembered at once.
pub const ADDRESSES_MAX: usize = 65_536;

/// A token bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    tokens: f64,
    last_s: f64,
}

/// Rate and burst of a bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_s: f64,
    /// Most tokens held.
    pub burst: f64,
}

impl Bucket {
    fn full(rate: Rate, now_s: f64) -> Self {
        Self { tokens: rate.burst, last_s: now_s }
    }

    fn refill(&mut self, rate: Rate, now_s: f64) {
        let elapsed = (now_s - self.last_s).max(0.0);
        self.tokens = (self.tokens + elapsed * rate.per_s).min(rate.burst);
        self.last_s = self.last_s.max(now_s);
    }
}

/// One token bucket with its rate (a connection's game traffic, `crate::proxy` `[proxy-4]`).
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate: Rate,
    bucket: Bucket,
}

impl TokenBucket {
    /// A full bucket at `now_s`.
    pub fn new(rate: Rate, now_s: f64) -> Self {
        Self { rate, bucket: Bucket::full(rate, now_s) }
    }

    /// Takes a token if there is one.
    pub fn allow(&mut self, now_s: f64) -> bool {
        self.bucket.refill(self.rate, now_s);
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Authentication limits.
#[derive(Debug)]
pub struct AuthLimits {
    per_address: Rate,
    global: Rate,
    buckets: HashMap<IpAddr, Bucket>,
    global_bucket: Bucket,
    refused: u64,
}

impl AuthLimits {
    /// Limits of `per_address` for each source address and `global` for all together.
    pub fn new(per_address: Rate, global: Rate, now_s: f64) -> Self {
        Self { per_address, global, buckets: HashMap::new(), global_bucket: Bucket::full(global, now_s), refused: 0 }
    }

    /// Attempts refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether an attempt from `addr` at `now_s` may go ahead (`[limit-1]`).
    pub fn allow(&mut self, addr: IpAddr, now_s: f64) -> bool {
        if !self.buckets.contains_key(&addr) && self.buckets.len() >= ADDRESSES_MAX {
            // `[limit-3]`: forget the stalest address.
            if let Some(stalest) = self.buckets.iter().min_by(|a, b| a.1.last_s.total_cmp(&b.1.last_s)).map(|(a, _)| *a)
            {
                self.buckets.remove(&stalest);
            }
        }
        let rate = self.per_address;
        let bucket = self.buckets.entry(addr).or_insert_with(|| Bucket::full(rate, now_s));
        bucket.refill(rate, now_s);
        self.global_bucket.refill(self.global, now_s);
        if bucket.tokens >= 1.0 && self.global_bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            self.global_bucket.tokens -= 1.0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Addresses remembered now.
    pub fn addresses(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn limit_1_2_per_address_and_global_buckets() {
        let mut l = AuthLimits::new(Rate { per_s: 1.0, burst: 3.0 }, Rate { per_s: 1.0, burst: 5.0 }, 0.0);
        assert!((0..3).all(|_| l.allow(ip(1), 0.0)), "a burst of three");
        assert!(!l.allow(ip(1), 0.0), "then one a second");
        // A second later the global bucket holds three: others get in until it runs dry.
        assert!(l.allow(ip(1), 1.0));
        assert!(l.allow(ip(2), 1.0));
        assert!(l.allow(ip(3), 1.0));
        assert!(!l.allow(ip(4), 1.0), "global burst spent");
        assert!(l.allow(ip(4), 2.0), "global refills at 1/s");
        assert_eq!(l.refused(), 2);
    }

    #[test]
    fn a_token_bucket_allows_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(Rate { per_s: 10.0, burst: 2.0 }, 0.0);
        assert!(b.allow(0.0) && b.allow(0.0));
        assert!(!b.allow(0.0));
        assert!(b.allow(0.1));
        assert!(!b.allow(0.1));
    }

    #[test]
    fn limit_3_the_address_table_is_bounded() {
        let mut l = AuthLimits::new(Rate { per_s: 1.0, burst: 1.0 }, Rate { per_s: 1e9, burst: 1e9 }, 0.0);
        for n in 0..(ADDRESSES_MAX as u32 + 10) {
            l.allow(ip(n), f64::from(n) * 1e-6);
        }
        assert_eq!(l.addresses(), ADDRESSES_MAX);
    }
}
