//! A link conditioner: latency, jitter, loss, duplication and reordering, for tests of
//! prediction and handoff under bad networks.
//!
//! The core ([`Conditioner`]) is pure: time and randomness come from outside (a virtual clock and
//! a seed), so a test replays exactly from its seed. [`spawn_conditioned_pipe`] wraps it in a
//! tokio task for real-time use between two channels.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Most packets held in flight; past this, new packets are dropped (a real queue overflows too).
pub const IN_FLIGHT_MAX: usize = 65_536;

/// How bad the link is.
#[derive(Copy, Clone, Debug, PartialEq, Default)]
pub struct LinkProfile {
    /// One-way base delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter]`.
    pub jitter: Duration,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a packet is delivered twice.
    pub duplicate: f64,
    /// Probability a packet is held back long enough to arrive after later ones.
    pub reorder: f64,
}

/// Why a link profile could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid link profile {0:?}: expected latency,jitter,loss[,duplicate[,reorder]] such as 80ms,10ms,2%")]
pub struct ProfileParseError(pub String);

fn parse_ms(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().strip_suffix("ms").unwrap_or(s.trim()).parse().ok()?;
    (v.is_finite() && (0.0..=60_000.0).contains(&v)).then(|| Duration::from_secs_f64(v / 1e3))
}

fn parse_fraction(s: &str) -> Option<f64> {
    let s = s.trim();
    let v: f64 = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().ok()? / 100.0,
        None => s.parse().ok()?,
    };
    (0.0..=1.0).contains(&v).then_some(v)
}

impl LinkProfile {
    /// Parses `latency,jitter,loss[,duplicate[,reorder]]`, e.g. `80ms,10ms,2%` or
    /// `50,5,0.01,0.001,0.01`.
    pub fn parse(spec: &str) -> Result<Self, ProfileParseError> {
        let err = || ProfileParseError(spec.to_string());
        let parts: Vec<&str> = spec.split(',').collect();
        if !(3..=5).contains(&parts.len()) {
            return Err(err());
        }
        Ok(Self {
            latency: parse_ms(parts[0]).ok_or_else(err)?,
            jitter: parse_ms(parts[1]).ok_or_else(err)?,
            loss: parse_fraction(parts[2]).ok_or_else(err)?,
            duplicate: parts.get(3).map_or(Some(0.0), |p| parse_fraction(p)).ok_or_else(err)?,
            reorder: parts.get(4).map_or(Some(0.0), |p| parse_fraction(p)).ok_or_else(err)?,
        })
    }
}

/// The pure conditioner: packets in with their send time, packets out at their delivery time.
#[derive(Debug)]
pub struct Conditioner<T> {
    profile: LinkProfile,
    rng: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, Slot<T>)>>,
    /// Packets lost so far.
    pub lost: u64,
    /// Packets duplicated so far.
    pub duplicated: u64,
    /// Packets held back for reordering so far.
    pub reordered: u64,
}

/// Wrapper that makes any payload orderable by ignoring it (order comes from time and seq).
#[derive(Debug)]
struct Slot<T>(T);
impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T: Clone> Conditioner<T> {
    /// A conditioner for `profile`, drawing randomness from `seed`.
    pub fn new(profile: LinkProfile, seed: u64) -> Self {
        Self { profile, rng: seed, seq: 0, queue: BinaryHeap::new(), lost: 0, duplicated: 0, reordered: 0 }
    }

    fn unit(&mut self) -> f64 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn delay(&mut self) -> Duration {
        let p = self.profile;
        let mut d = p.latency + p.jitter.mul_f64(self.unit());
        if p.reorder > 0.0 && self.unit() < p.reorder {
            // Held back by more than the whole jitter window: later packets overtake it.
            d += p.jitter + p.latency / 2 + Duration::from_millis(1);
            self.reordered += 1;
        }
        d
    }

    fn enqueue(&mut self, at: Duration, packet: T) {
        if self.queue.len() >= IN_FLIGHT_MAX {
            self.lost += 1;
            return;
        }
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, Slot(packet))));
    }

    /// A packet sent at `now`.
    pub fn send(&mut self, now: Duration, packet: T) {
        if self.unit() < self.profile.loss {
            self.lost += 1;
            return;
        }
        if self.profile.duplicate > 0.0 && self.unit() < self.profile.duplicate {
            self.duplicated += 1;
            let d = self.delay();
            self.enqueue(now + d, packet.clone());
        }
        let d = self.delay();
        self.enqueue(now + d, packet);
    }

    /// The next packet due at or before `now`, if any.
    pub fn poll(&mut self, now: Duration) -> Option<T> {
        match self.queue.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.queue.pop().map(|Reverse((_, _, Slot(p)))| p),
            _ => None,
        }
    }

    /// When the next packet is due.
    pub fn next_due(&self) -> Option<Duration> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// Runs a conditioner between two channels in real time: what is sent into the returned sender
/// comes out of the returned receiver after the profile's delays, losses and duplicates.
/// The task ends when the sender is dropped and everything in flight is delivered.
pub fn spawn_conditioned_pipe<T: Clone + Send + 'static>(
    profile: LinkProfile,
    seed: u64,
    capacity: usize,
) -> (tokio::sync::mpsc::Sender<T>, tokio::sync::mpsc::Receiver<T>) {
    let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<T>(capacity.max(1));
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<T>(capacity.max(1));
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut link = Conditioner::new(profile, seed);
        let mut open = true;
        loop {
            let now = start.elapsed();
            while let Some(p) = link.poll(now) {
                if out_tx.send(p).await.is_err() {
                    return;
                }
            }
            if !open && link.in_flight() == 0 {
                return;
            }
            let wake = link.next_due().map(|at| start + at);
            tokio::select! {
                received = in_rx.recv(), if open => match received {
                    Some(p) => link.send(start.elapsed(), p),
                    None => open = false,
                },
                _ = async { tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)).await }, if wake.is_some() => {}
            }
        }
    });
    (in_tx, out_rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(profile: LinkProfile, seed: u64, n: u64) -> Vec<(Duration, u64)> {
        let mut c = Conditioner::new(profile, seed);
        let mut out = Vec::new();
        let step = Duration::from_millis(1);
        let mut now = Duration::ZERO;
        for i in 0..n {
            c.send(now, i);
            while let Some(p) = c.poll(now) {
                out.push((now, p));
            }
            now += step;
        }
        while let Some(at) = c.next_due() {
            now = now.max(at);
            while let Some(p) = c.poll(now) {
                out.push((now, p));
            }
        }
        out
    }

    #[test]
    fn loss_duplication_and_reordering_match_the_profile() {
        let p = LinkProfile {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.05,
        };
        let n = 20_000;
        let out = run(p, 42, n);
        let mut seen = std::collections::HashMap::new();
        for (_, id) in &out {
            *seen.entry(*id).or_insert(0u32) += 1;
        }
        let lost = n - seen.len() as u64;
        let dup = seen.values().filter(|c| **c > 1).count() as f64 / n as f64;
        assert!((lost as f64 / n as f64 - 0.1).abs() < 0.015, "loss {lost}");
        assert!((dup - 0.05 * 0.9).abs() < 0.015, "duplicates {dup}");
        let inversions = out.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64 / n as f64;
        assert!(inversions > 0.02, "hardly any reordering: {inversions}");
    }

    #[test]
    fn delays_stay_within_latency_plus_jitter_without_reordering() {
        let p = LinkProfile {
            latency: Duration::from_millis(30),
            jitter: Duration::from_millis(8),
            ..LinkProfile::default()
        };
        let mut c = Conditioner::new(p, 7);
        for i in 0..1000u64 {
            c.send(Duration::from_millis(i), i);
        }
        let mut count = 0;
        while let Some(t) = c.next_due() {
            let p = c.poll(t).unwrap();
            let sent = Duration::from_millis(p);
            let latency = Duration::from_millis(30);
            assert!(t >= sent + latency && t <= sent + latency + Duration::from_millis(8), "packet {p} at {t:?}");
            count += 1;
        }
        assert_eq!(count, 1000);
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let p = LinkProfile {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(20),
            loss: 0.2,
            duplicate: 0.1,
            reorder: 0.1,
        };
        assert_eq!(run(p, 9, 2000), run(p, 9, 2000));
        assert_ne!(run(p, 9, 2000), run(p, 10, 2000));
    }

    #[test]
    fn profiles_parse_and_bad_ones_are_refused() {
        let p = LinkProfile::parse("80ms,10ms,2%").unwrap();
        assert_eq!(p.latency, Duration::from_millis(80));
        assert_eq!(p.jitter, Duration::from_millis(10));
        assert!((p.loss - 0.02).abs() < 1e-9);
        let q = LinkProfile::parse("50,5,0.01,0.001,0.02").unwrap();
        assert!((q.reorder - 0.02).abs() < 1e-9);
        for bad in ["", "80ms", "80ms,10ms,200%", "-5,1,0", "a,b,c", "1,2,3,4,5,6"] {
            assert!(LinkProfile::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pipe_delays_in_virtual_time() {
        let p = LinkProfile { latency: Duration::from_millis(100), ..LinkProfile::default() };
        let (tx, mut rx) = spawn_conditioned_pipe::<u32>(p, 1, 16);
        let start = tokio::time::Instant::now();
        tx.send(5).await.unwrap();
        assert_eq!(rx.recv().await, Some(5));
        assert!(start.elapsed() >= Duration::from_millis(100));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }
}
