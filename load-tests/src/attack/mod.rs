//! An adversarial client harness: hostile peers over raw QUIC ([`raw`]) against a live world,
//! each attack a loop that runs until the deadline and records what the world answered,
//! sorted into outcomes that are what a sound server does ("expected") and outcomes that are
//! not. The harness only observes answers; what the attacks cost honest players and the
//! processes' memory is measured around it (`pwn bench attack`).
//!
//! Attacks (all at once; the names are the report's; the two that log in are in `sessions`):
//! - `garbage_frames`, `oversized_frames`: a frame that does not decode, and one announcing
//!   2 GiB, after a good handshake: expected closed with `ProtocolViolation`.
//! - `wrong_version`, `wrong_digest`: expected `Refused` with `VersionMismatch`/`SimMismatch`.
//! - `legacy_alpn` (`h3`, what builds before protocol 5 offered): expected told
//!   `VersionMismatch`; `foreign_alpn`: expected to fail the TLS handshake.
//! - `stream_flood`: extra streams on a player connection, both ways and one-way (a player has
//!   one): expected none can be opened.
//! - `connection_flood`: 100 connections at once from one address: expected no more than the
//!   gateway's per-address cap admitted, the rest refused.
//! - `half_open`: QUIC connections that never open a stream: expected closed by the server.
//! - `login_storm`: wrong passwords for the honest players' accounts and for unknown names,
//!   from many addresses at `login_rate_per_s`: expected refusals (invalid, rate limited,
//!   throttled), never a session.
//! - `foreign_datagrams`: a logged-in attacker sends datagrams wrapped as another player's
//!   (`Routed`), inputs at extreme values and acknowledgements of future ticks, then logs out
//!   and keeps sending; and a connection that never logged in sends inputs: expected no
//!   effect on anyone (the connection is not closed for it; the harm would show in the
//!   honest players' figures).

pub mod raw;
mod sessions;

use pwn_proto::{Message, RefuseCode};
use raw::{Answer, Raw, client_hello};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What to attack, and how hard.
#[derive(Clone, Debug)]
pub struct AttackConfig {
    /// The players' endpoint (a gateway).
    pub addr: SocketAddr,
    /// The name on its certificate.
    pub server_name: String,
    /// The CA its certificate is checked against (PEM).
    pub ca_pem: String,
    /// The world's simulation digest (so handshakes get as far as the attack needs).
    pub sim_digest: u64,
    /// How long to attack.
    pub duration: Duration,
    /// Wrong-password logins tried per second, all addresses together.
    pub login_rate_per_s: f64,
    /// Source addresses to spread over: 127.0.0.2 onwards (loopback only).
    pub addresses: u8,
    /// Account names the storm guesses passwords for (the honest players'), besides unknown
    /// names.
    pub victim_accounts: Vec<String>,
    /// Seed of the attack's random bytes and names.
    pub seed: u64,
    /// Only these attacks ([`ATTACKS`] names; `legacy_alpn` runs `foreign_alpn` too, and the
    /// like for each pair that shares a loop); empty runs every one.
    pub only: Vec<String>,
}

/// Every attack's name, as `AttackConfig::only` and the report name them.
pub const ATTACKS: [&str; 12] = [
    "garbage_frames",
    "oversized_frames",
    "wrong_version",
    "wrong_digest",
    "legacy_alpn",
    "foreign_alpn",
    "stream_flood",
    "connection_flood",
    "half_open",
    "login_storm",
    "foreign_datagrams",
    "all",
];

/// One attack's tally.
#[derive(Clone, Debug, Default)]
pub struct AttackTally {
    /// Outcomes that are what a sound server does, by label.
    pub expected: BTreeMap<String, u64>,
    /// Outcomes that are not, by label (each one is a finding).
    pub unexpected: BTreeMap<String, u64>,
}

impl AttackTally {
    /// Attempts recorded.
    pub fn attempts(&self) -> u64 {
        self.expected.values().sum::<u64>() + self.unexpected.values().sum::<u64>()
    }

    /// Unexpected outcomes.
    pub fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }
}

/// Every attack's tally, by attack name.
#[derive(Clone, Debug, Default)]
pub struct AttackReport {
    /// Tallies in name order.
    pub attacks: BTreeMap<&'static str, AttackTally>,
}

impl AttackReport {
    /// Unexpected outcomes over every attack.
    pub fn unexpected_total(&self) -> u64 {
        self.attacks.values().map(AttackTally::unexpected_total).sum()
    }

    /// One line per attack: attempts, expected outcomes, unexpected outcomes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (name, t) in &self.attacks {
            let list =
                |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
            out.push_str(&format!("  {name:<18} {:>6} tries  expected: {}\n", t.attempts(), list(&t.expected)));
            if t.unexpected_total() > 0 {
                out.push_str(&format!("  {:<18} {:>6}        UNEXPECTED: {}\n", "", "", list(&t.unexpected)));
            }
        }
        out
    }

    /// As JSON: `{name: {attempts, expected: {...}, unexpected: {...}}}`.
    pub fn json(&self) -> serde_json::Value {
        let map = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
        self.attacks
            .iter()
            .map(|(name, t)| {
                let v = serde_json::json!({
                    "attempts": t.attempts(),
                    "expected": serde_json::Value::Object(map(&t.expected)),
                    "unexpected": serde_json::Value::Object(map(&t.unexpected)),
                });
                ((*name).to_owned(), v)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

type Shared = Arc<Mutex<AttackReport>>;

fn record(report: &Shared, attack: &'static str, expected: bool, label: &str) {
    if let Ok(mut r) = report.lock() {
        let t = r.attacks.entry(attack).or_default();
        let m = if expected { &mut t.expected } else { &mut t.unexpected };
        *m.entry(label.to_owned()).or_default() += 1;
    }
}

/// The label of an answer, and whether it is one of `ok` (a refusal code or `Refused` code).
fn refusal(answer: &Answer, ok: RefuseCode) -> (bool, String) {
    match answer {
        Answer::Message(Message::Refused(r)) => (r.code == ok, format!("refused {:?}", r.code)),
        Answer::Closed(code) => (*code == ok as u64, format!("closed code {code}")),
        Answer::Message(m) => (false, format!("answered {}", kind_name(m))),
        Answer::Ended(why) => (false, format!("ended: {why}")),
        Answer::Silent => (false, "no answer".into()),
    }
}

fn kind_name(m: &Message) -> String {
    let d = format!("{m:?}");
    d.split(['(', ' ', '{']).next().unwrap_or_default().to_owned()
}

/// A small deterministic generator (the attack's bytes and names come from its seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

struct Ctx {
    cfg: AttackConfig,
    report: Shared,
    deadline: Instant,
    /// One endpoint per source address, offering PWN's ALPN.
    pwn: Vec<Raw>,
}

impl Ctx {
    fn live(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn endpoint(&self, i: usize) -> &Raw {
        &self.pwn[i % self.pwn.len()]
    }

    fn local(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(self.cfg.addresses.max(1))) as u8))
    }

    fn record(&self, attack: &'static str, expected: bool, label: &str) {
        record(&self.report, attack, expected, label);
    }
}

/// Runs every attack until `cfg.duration` has passed; returns what the world answered.
pub async fn run_attack(cfg: AttackConfig) -> Result<AttackReport, String> {
    let addresses = usize::from(cfg.addresses.max(1));
    let mut pwn = Vec::with_capacity(addresses);
    for i in 0..addresses {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        pwn.push(Raw::new(local, &cfg.ca_pem, &pwn_net::endpoint::alpn(), cfg.addr, &cfg.server_name)?);
    }
    let ctx = Arc::new(Ctx { deadline: Instant::now() + cfg.duration, report: Shared::default(), pwn, cfg });
    if let Some(unknown) = ctx.cfg.only.iter().find(|a| !ATTACKS.contains(&a.as_str())) {
        return Err(format!("no attack is called {unknown:?}; there are {}", ATTACKS.join(", ")));
    }
    let enabled = Mutex::new(Vec::<&'static str>::new());
    let on = |names: &[&'static str]| {
        let yes = ctx.cfg.only.is_empty() || ctx.cfg.only.iter().any(|o| o == "all" || names.contains(&o.as_str()));
        if let (true, Ok(mut e)) = (yes, enabled.lock()) {
            e.extend_from_slice(names);
        }
        yes
    };
    let mut tasks = Vec::new();
    if on(&["garbage_frames", "oversized_frames"]) {
        tasks.push(tokio::spawn(bad_frames(ctx.clone())));
    }
    if on(&["wrong_version", "wrong_digest"]) {
        tasks.push(tokio::spawn(bad_hellos(ctx.clone())));
    }
    if on(&["legacy_alpn", "foreign_alpn"]) {
        tasks.push(tokio::spawn(alpns(ctx.clone())));
    }
    if on(&["stream_flood"]) {
        tasks.push(tokio::spawn(stream_flood(ctx.clone())));
    }
    if on(&["connection_flood"]) {
        tasks.push(tokio::spawn(connection_flood(ctx.clone())));
    }
    if on(&["half_open"]) {
        tasks.push(tokio::spawn(half_open(ctx.clone())));
    }
    if on(&["login_storm"]) {
        let storm_connections = (ctx.cfg.login_rate_per_s / 4.0).ceil().clamp(1.0, 256.0) as usize;
        for i in 0..storm_connections {
            tasks.push(tokio::spawn(sessions::login_storm(ctx.clone(), i, storm_connections)));
        }
    }
    if on(&["foreign_datagrams"]) {
        tasks.push(tokio::spawn(sessions::foreign_datagrams(ctx.clone())));
    }
    // Attacks stop at the deadline, in the middle of a round if they must (what they recorded
    // so far stays), so the attack lasts what was asked and not a round longer. An attack that
    // got no answer at all in that time is a finding: a server that answers nothing must not
    // pass for one that refuses well (a round takes up to a few seconds: half-open connections
    // wait for the 5 s handshake timeout, a foreign ALPN for 3 s).
    for mut t in tasks {
        match tokio::time::timeout_at(ctx.deadline, &mut t).await {
            Ok(done) => done.map_err(|e| format!("an attack task failed: {e}"))?,
            Err(_) => t.abort(),
        }
    }
    for name in enabled.into_inner().unwrap_or_default() {
        let silent = ctx.report.lock().map(|r| r.attacks.get(name).is_none_or(|t| t.attempts() == 0)).unwrap_or(false);
        if silent {
            ctx.record(name, false, "no answer within the attack's duration");
        }
    }
    let report = ctx.report.lock().map_err(|_| "attack report poisoned".to_owned())?.clone();
    Ok(report)
}

/// `garbage_frames` and `oversized_frames`, alternately, about 4 a second.
async fn bad_frames(ctx: Arc<Ctx>) {
    let mut rng = Rng(ctx.cfg.seed ^ 1);
    let mut i = 0usize;
    while ctx.live() {
        i += 1;
        let (name, frame) = if i.is_multiple_of(2) {
            // A length that fits, then bytes that are no message (tag 0xEE is none).
            let mut body: Vec<u8> = (0..60).map(|_| rng.next() as u8).collect();
            body[0] = 0xEE;
            ("garbage_frames", [&(body.len() as u32).to_le_bytes()[..], &body].concat())
        } else {
            ("oversized_frames", [&0x7FFF_FFF0u32.to_le_bytes()[..], &[7u8; 512][..]].concat())
        };
        match ctx.endpoint(i).hello(client_hello(ctx.cfg.sim_digest, "attack")).await {
            Ok((_conn, mut s, Answer::Message(Message::Welcome(_)))) => {
                let _ = s.send_raw(frame).await;
                let (ok, label) = refusal(&s.recv().await, RefuseCode::ProtocolViolation);
                ctx.record(name, ok, &label);
            }
            Ok((_, _, a)) => ctx.record(name, false, &format!("handshake: {}", refusal(&a, RefuseCode::Unavailable).1)),
            Err(e) => ctx.record(name, false, &format!("connect: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `wrong_version` and `wrong_digest`, about 4 a second.
async fn bad_hellos(ctx: Arc<Ctx>) {
    let mut i = 0usize;
    while ctx.live() {
        i += 1;
        let mut hello = client_hello(ctx.cfg.sim_digest, "attack");
        let (name, code) = if i.is_multiple_of(2) {
            hello.protocol_version = hello.protocol_version.wrapping_sub(1);
            ("wrong_version", RefuseCode::VersionMismatch)
        } else {
            hello.sim_digest ^= 0x5a5a;
            ("wrong_digest", RefuseCode::SimMismatch)
        };
        match ctx.endpoint(i + 7).hello(hello).await {
            Ok((_conn, _s, answer)) => {
                let (ok, label) = refusal(&answer, code);
                ctx.record(name, ok, &label);
            }
            Err(e) => ctx.record(name, false, &format!("connect: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `legacy_alpn` and `foreign_alpn`, one of each a second.
async fn alpns(ctx: Arc<Ctx>) {
    let local = ctx.local(3);
    let make = |alpn: &str| Raw::new(local, &ctx.cfg.ca_pem, alpn, ctx.cfg.addr, &ctx.cfg.server_name);
    let (legacy, foreign) = match (make(pwn_net::endpoint::LEGACY_ALPN), make("hq-interop")) {
        (Ok(l), Ok(f)) => (l, f),
        (Err(e), _) | (_, Err(e)) => return ctx.record("legacy_alpn", false, &format!("endpoint: {e}")),
    };
    while ctx.live() {
        match legacy.hello(client_hello(ctx.cfg.sim_digest, "old build")).await {
            Ok((_c, _s, answer)) => {
                let (ok, label) = refusal(&answer, RefuseCode::VersionMismatch);
                ctx.record("legacy_alpn", ok, &label);
            }
            Err(e) => ctx.record("legacy_alpn", false, &format!("connect: {e}")),
        }
        match foreign.connect().await {
            Ok(_) => ctx.record("foreign_alpn", false, "admitted"),
            Err(_) => ctx.record("foreign_alpn", true, "handshake failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Tries to open 16 more streams on `conn` (one-way or both ways) and to park a window's worth
/// of bytes in each, as the original attack did; returns how many opened.
async fn park_streams(conn: &mut s2n_quic::Connection, one_way: bool) -> u32 {
    let wait = Duration::from_millis(100);
    let mut opened = 0;
    for _ in 0..16 {
        let stream = if one_way {
            tokio::time::timeout(wait, conn.open_send_stream()).await.ok().and_then(Result::ok)
        } else {
            let both = tokio::time::timeout(wait, conn.open_bidirectional_stream()).await.ok().and_then(Result::ok);
            both.map(|s| s.split().1)
        };
        if let Some(mut send) = stream {
            let _ = tokio::time::timeout(wait, send.send(bytes::Bytes::from(vec![0u8; 64 * 1024]))).await;
            opened += 1;
        }
    }
    opened
}

/// `stream_flood`: a player connection tries to open 16 more streams.
async fn stream_flood(ctx: Arc<Ctx>) {
    let mut i = 0usize;
    while ctx.live() {
        i += 1;
        match ctx.endpoint(i + 11).hello(client_hello(ctx.cfg.sim_digest, "attack")).await {
            Ok((mut conn, _s, Answer::Message(Message::Welcome(_)))) => {
                let opened = park_streams(&mut conn, false).await;
                let one_way = park_streams(&mut conn, true).await;
                let label = format!("{opened} extra and {one_way} one-way streams opened");
                ctx.record("stream_flood", opened == 0 && one_way == 0, &label);
            }
            Ok((_, _, a)) => {
                ctx.record("stream_flood", false, &format!("handshake: {}", refusal(&a, RefuseCode::Unavailable).1))
            }
            Err(e) => ctx.record("stream_flood", false, &format!("connect: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `connection_flood`: 100 connections at once from one address, held 3 s, again and again.
async fn connection_flood(ctx: Arc<Ctx>) {
    const AT_ONCE: usize = 100;
    let Ok(flooder) = Raw::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250)),
        &ctx.cfg.ca_pem,
        &pwn_net::endpoint::alpn(),
        ctx.cfg.addr,
        &ctx.cfg.server_name,
    ) else {
        return ctx.record("connection_flood", false, "endpoint failed");
    };
    let flooder = Arc::new(flooder);
    while ctx.live() {
        let mut wave = Vec::with_capacity(AT_ONCE);
        for _ in 0..AT_ONCE {
            let f = flooder.clone();
            let digest = ctx.cfg.sim_digest;
            wave.push(tokio::spawn(async move {
                let (c, mut s, answer) = f.hello(client_hello(digest, "flood")).await?;
                // The gateway welcomes every handshake, then refuses a connection over its
                // address's cap at once: silence for a second means admitted.
                let answer = match answer {
                    Answer::Message(Message::Welcome(_)) => match s.recv_within(Duration::from_secs(1)).await {
                        Answer::Silent => answer,
                        refused => refused,
                    },
                    other => other,
                };
                Ok::<_, String>((c, s, answer))
            }));
        }
        let mut held = Vec::new();
        let (mut admitted, mut refused, mut other) = (0u32, 0u32, 0u32);
        for w in wave {
            match w.await {
                Ok(Ok((c, s, Answer::Message(Message::Welcome(_))))) => {
                    admitted += 1;
                    held.push((c, s));
                }
                Ok(Ok((_, _, Answer::Message(Message::Refused(_)) | Answer::Closed(_)))) => refused += 1,
                _ => other += 1,
            }
        }
        let cap = pwn_gateway_cap();
        // A sound gateway answers every one of them, admitted or refused: a connection that
        // got neither (no handshake, no answer) is no evidence of a cap, and a gateway that
        // answers nobody must not pass as one that held its cap.
        ctx.record(
            "connection_flood",
            admitted <= cap && other == 0 && admitted + refused == AT_ONCE as u32,
            &format!("{admitted} admitted, {refused} refused, {other} other"),
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The gateway's default per-address connection cap (`[gw-6]`): the flood may not get more.
fn pwn_gateway_cap() -> u32 {
    64
}

/// `half_open`: 16 QUIC connections that never open a stream, each waited on until the server
/// closes it.
async fn half_open(ctx: Arc<Ctx>) {
    let mut round = 0usize;
    while ctx.live() {
        round += 1;
        // All 16 at once (a server that does not answer costs one handshake timeout, not 16).
        let mut held = Vec::new();
        for i in 0..16 {
            let ctx = ctx.clone();
            held.push(tokio::spawn(async move {
                let c = ctx.endpoint(round * 16 + i).connect().await?;
                let started = Instant::now();
                let (_h, mut streams) = c.split();
                let closed = tokio::time::timeout(Duration::from_secs(20), streams.accept_bidirectional_stream()).await;
                let outcome = match closed {
                    Err(_) => (false, "still open after 20 s".to_owned()),
                    Ok(Ok(Some(_))) => (false, "the server opened a stream".to_owned()),
                    Ok(_) => (true, format!("closed by the server within {} s", started.elapsed().as_secs() + 1)),
                };
                Ok::<_, String>(outcome)
            }));
        }
        for h in held {
            match h.await {
                Ok(Ok((expected, label))) => ctx.record("half_open", expected, &label),
                // No QUIC connection at all is no evidence that the server closes half-open ones.
                Ok(Err(e)) => ctx.record("half_open", false, &format!("connect: {e}")),
                Err(_) => ctx.record("half_open", false, "task failed"),
            }
        }
    }
}
