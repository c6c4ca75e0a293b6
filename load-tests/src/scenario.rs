//! Bot movement scenarios. A [`Mover`] turns what its bot sees (a `pwn_client::Frame`) into an
//! intent; it is deterministic for a seed, so a swarm's behaviour is reproducible up to
//! network timing.

use glam::Vec3;
use pwn_client::{Frame, Intent};
use pwn_sim::Buttons;

/// How bots move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Random waypoints over the whole world.
    Wander,
    /// Waypoints around a few hotspots: crowds form.
    Hotspot,
    /// Wander, and shoot at whoever comes near.
    Shooters,
    /// Cross the borders through the world's centre back and forth (where a 2x2 partition's
    /// four cells meet): alone or in crowds at a few shared crossing points, half of them
    /// shooting at whoever comes near, across the border or not.
    Border,
    /// Wander, then at `FLASH_AT_S` into the run everyone converges on the spawn points'
    /// centre and mills within `FLASH_RADIUS_M` of it.
    FlashCrowd,
    /// Wander, each bot saying a proximity chat line every `CHAT_STORM_PERIOD_S`.
    ChatStorm,
    /// Every bot logs in at once (`LOGIN_STORM_JOINS_PER_S`, through the gateway where there
    /// is one: argon2id for each), retrying when the gateway says it is busy, then wanders.
    LoginStorm,
    /// A mixed day: each bot one of the others by its index (`MIXED_DAY_SHARES`).
    Mixed,
    /// Half the bots build (place, change, move and remove objects of the world's kinds), half
    /// ride platforms (`crate::builders`).
    Builders,
}

/// Joins started per second in a login storm.
pub const LOGIN_STORM_JOINS_PER_S: f64 = 1_000.0;

/// When the flash crowd converges, seconds after the swarm started.
pub const FLASH_AT_S: f64 = 15.0;
/// How close to the gathering point the crowd mills.
pub const FLASH_RADIUS_M: f32 = 8.0;
/// Seconds between a chat-storm bot's lines.
pub const CHAT_STORM_PERIOD_S: f64 = 2.0;
/// A mixed day: the share of bots (in hundredths) that wander, crowd hotspots, shoot, dance
/// across borders, join the flash crowd and chat, in that order.
pub const MIXED_DAY_SHARES: [(Scenario, u64); 6] = [
    (Scenario::Wander, 35),
    (Scenario::Hotspot, 20),
    (Scenario::Shooters, 15),
    (Scenario::Border, 10),
    (Scenario::FlashCrowd, 10),
    (Scenario::ChatStorm, 10),
];

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wander" => Ok(Self::Wander),
            "hotspot" => Ok(Self::Hotspot),
            "shooters" => Ok(Self::Shooters),
            "border" => Ok(Self::Border),
            "flash-crowd" => Ok(Self::FlashCrowd),
            "chat-storm" => Ok(Self::ChatStorm),
            "login-storm" => Ok(Self::LoginStorm),
            "mixed" => Ok(Self::Mixed),
            "builders" => Ok(Self::Builders),
            other => Err(format!(
                "unknown scenario {other:?} (wander, hotspot, shooters, border, flash-crowd, chat-storm, login-storm, mixed, builders)"
            )),
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wander => "wander",
            Self::Hotspot => "hotspot",
            Self::Shooters => "shooters",
            Self::Border => "border",
            Self::FlashCrowd => "flash-crowd",
            Self::ChatStorm => "chat-storm",
            Self::LoginStorm => "login-storm",
            Self::Mixed => "mixed",
            Self::Builders => "builders",
        })
    }
}

impl Scenario {
    /// What bot `index` does in this scenario (a mixed day gives each bot one of the others).
    pub fn for_bot(self, index: usize) -> Scenario {
        if self != Self::Mixed {
            return self;
        }
        // Spread over the indices: bot i takes the share its i-th hundredth falls in.
        let slot = (index as u64 * 37) % 100;
        let mut edge = 0;
        for (s, share) in MIXED_DAY_SHARES {
            edge += share;
            if slot < edge {
                return s;
            }
        }
        Self::Wander
    }

    /// Joins started per second: `usual` unless the scenario is a login storm.
    pub fn joins_per_s(self, usual: f64) -> f64 {
        if self == Self::LoginStorm { LOGIN_STORM_JOINS_PER_S } else { usual }
    }

    /// Seconds between a bot's chat lines (`None`: one line, a second after joining).
    pub fn chat_period_s(self) -> Option<f64> {
        (self == Self::ChatStorm).then_some(CHAT_STORM_PERIOD_S)
    }

    /// The movement model and its parameters, for the report.
    pub fn parameters(self) -> Vec<(String, String)> {
        let mut p = vec![("scenario".to_owned(), self.to_string())];
        let mut add = |k: &str, v: String| p.push((k.to_owned(), v));
        match self {
            Self::Builders => {
                add("model", "even bots build where they landed, odd bots ride platforms".into());
                add(
                    "builders",
                    format!(
                        "every {} s the next step of: place an object {} m ahead (kind by index), change its state, move it 1 m aside, remove it",
                        crate::builders::BUILD_PERIOD_S,
                        crate::builders::BUILD_AHEAD_M
                    ),
                );
                add(
                    "riders",
                    "walk to the first waypoint of a platform picked by index (or 1.2 m beside it) and wait there"
                        .into(),
                );
            }
            Self::Mixed => {
                let shares: Vec<String> = MIXED_DAY_SHARES.iter().map(|(s, n)| format!("{n}% {s}")).collect();
                add("model", format!("each bot one of the other scenarios, by its index: {}", shares.join(", ")));
            }
            Self::FlashCrowd => {
                add("model", "wander, then everyone converges on the spawn points' centre and mills there".into());
                add("converge at", format!("{FLASH_AT_S} s into the run"));
                add("mill within", format!("{FLASH_RADIUS_M} m"));
                add("wander radius before", format!("{WANDER_RADIUS_M} m"));
            }
            Self::LoginStorm => {
                add("model", "every bot logs in at once, retrying while the gateway is busy, then wanders".into());
                add("joins started", format!("{LOGIN_STORM_JOINS_PER_S} a second"));
                add("retries", "up to 40, 250 ms more each time, at most 2 s apart".into());
                add("wander radius", format!("{WANDER_RADIUS_M} m"));
            }
            Self::ChatStorm => {
                add("model", "wander, chatting".into());
                add("chat", format!("a proximity line every {CHAT_STORM_PERIOD_S} s per bot"));
                add("wander radius", format!("{WANDER_RADIUS_M} m"));
            }
            Self::Wander | Self::Shooters => {
                add("model", "random waypoints around the spawn points' centre, uniform over a disc".into());
                add("wander radius", format!("{WANDER_RADIUS_M} m"));
            }
            Self::Hotspot => {
                add("model", "random waypoints within 12 m of a spawn point picked at random".into());
            }
            Self::Border => {
                add("model", "back and forth across the borders through the world's centre, a third of the bots in crowds at shared crossing points".into());
                add("reach along a border", format!("{BORDER_REACH_M} m"));
                add("swing past a border", format!("{:.0}-{BORDER_SWING_M} m", BORDER_SWING_M / 4.0));
                add("crowd crossing points", format!("{BORDER_CROWDS:?} m"));
                add("shooters", "half of the bots".into());
            }
        }
        if self == Self::Shooters {
            add("shooters", format!("every bot, at the nearest character within {AIM_RANGE_M} m"));
        }
        if self.chat_period_s().is_none() && self != Self::Mixed {
            add("chat", "one proximity line a second after joining".into());
        }
        add("new waypoint", "on arrival (within 2 m), else 1 in 600 updates".into());
        add("run / walk", "toggled about every 5 s".into());
        add("jump", "1 in 300 updates".into());
        add(
            "stuck",
            format!("moved under {STUCK_DISTANCE_M} m in {STUCK_CHECK_UPDATES} updates: a {DETOUR_M} m detour"),
        );
        p
    }
}

/// Nearest other character a shooter aims at.
const AIM_RANGE_M: f32 = 25.0;

/// One bot's movement.
#[derive(Clone, Debug)]
pub struct Mover {
    scenario: Scenario,
    rng: u64,
    /// World bounds on XZ: min x, min z, max x, max z (kept inside by a margin).
    bounds: [f32; 4],
    hotspots: Vec<Vec3>,
    waypoint: Option<Vec3>,
    updates: u64,
    running: bool,
    /// The centre of the spawn points: wanderers roam around it.
    centre: Vec3,
    /// Where the bot was at the last stuck check.
    checkpoint: Option<Vec3>,
    /// Fixed per bot: which border it dances across, whether in a crowd, whether it shoots.
    traits: u64,
    /// Seconds since the swarm started, as the bot's driver last said.
    clock_s: f64,
    /// Builders scenario: whether this bot builds, and the platform stops a rider picks from.
    builder: bool,
    stops: Vec<Vec3>,
    stop: Option<Vec3>,
}

/// Border dancers cross at most this far along a border from the centre.
pub const BORDER_REACH_M: f32 = 120.0;
/// How far to either side of the border a dancer turns back (at least a quarter of this).
pub const BORDER_SWING_M: f32 = 16.0;
/// Crossing points shared by crowds of dancers.
const BORDER_CROWDS: [f32; 3] = [45.0, -60.0, 80.0];

/// Wanderers pick waypoints within this distance of the spawn points' centre.
pub const WANDER_RADIUS_M: f32 = 200.0;
/// Updates between checks whether a bot is stuck (two seconds at 30 Hz).
const STUCK_CHECK_UPDATES: u64 = 60;
/// How far a stuck bot detours.
const DETOUR_M: f32 = 12.0;
/// A bot that moved less than this since the last check is stuck.
const STUCK_DISTANCE_M: f32 = 2.0;

impl Mover {
    /// A mover for a bot seeded by `seed` in a world whose XZ bounds are `bounds`
    /// (`[min_x, min_z, max_x, max_z]`); hotspots come from `spawn_points`.
    pub fn new(scenario: Scenario, seed: u64, bounds: [f32; 4], spawn_points: &[[f32; 3]]) -> Self {
        let margin = 4.0;
        let bounds = [bounds[0] + margin, bounds[1] + margin, bounds[2] - margin, bounds[3] - margin];
        let hotspots: Vec<Vec3> = spawn_points.iter().map(|p| Vec3::from(*p)).collect();
        let centre = if hotspots.is_empty() {
            Vec3::ZERO
        } else {
            hotspots.iter().copied().sum::<Vec3>() / hotspots.len() as f32
        };
        Self {
            scenario,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            bounds,
            hotspots,
            waypoint: None,
            running: true,
            centre,
            checkpoint: None,
            updates: 0,
            traits: seed.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17),
            clock_s: 0.0,
            builder: false,
            stops: Vec::new(),
            stop: None,
        }
    }

    /// The bot's part in the builders scenario: building, or riding one of `world`'s platforms.
    pub fn with_builders_role(mut self, builder: bool, world: &pwn_sim::WorldDesc) -> Self {
        self.builder = builder;
        self.stops = world.platforms.iter().map(|p| Vec3::from(p.path_m[0])).collect();
        self
    }

    /// Sets the swarm's clock (seconds since it started): scenarios that change over the run
    /// (the flash crowd) follow it.
    pub fn set_clock_s(&mut self, clock_s: f64) {
        if self.scenario == Scenario::FlashCrowd && self.clock_s < FLASH_AT_S && clock_s >= FLASH_AT_S {
            // The crowd forms now: drop whatever the bot was heading for.
            self.waypoint = None;
        }
        self.clock_s = clock_s;
    }

    fn next(&mut self) -> u32 {
        self.rng = self.rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.rng >> 33) as u32
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 10_000) as f32 / 10_000.0
    }

    fn pick_waypoint(&mut self) -> Vec3 {
        let [x0, z0, x1, z1] = self.bounds;
        match self.scenario {
            Scenario::Border => {
                // A crossing point on the border x = c.x or z = c.z (the bot keeps its axis),
                // then a point past it on the side the bot is not on.
                let c = self.centre;
                let along = match self.traits % 3 {
                    0 => BORDER_CROWDS[(self.traits >> 8) as usize % BORDER_CROWDS.len()] + (self.unit() - 0.5) * 6.0,
                    _ => (self.unit() * 2.0 - 1.0) * BORDER_REACH_M,
                };
                let swing = (0.25 + 0.75 * self.unit()) * BORDER_SWING_M;
                let side = if self.updates.is_multiple_of(2) { 1.0 } else { -1.0 };
                let across = match self.waypoint {
                    // Alternate sides: past the border from wherever the last waypoint was.
                    Some(w) if (self.traits >> 4) & 1 == 0 => -(w.x - c.x).signum() * swing,
                    Some(w) => -(w.z - c.z).signum() * swing,
                    None => side * swing,
                };
                let p = if (self.traits >> 4) & 1 == 0 {
                    Vec3::new(c.x + across, 0.0, c.z + along)
                } else {
                    Vec3::new(c.x + along, 0.0, c.z + across)
                };
                Vec3::new(p.x.clamp(x0, x1), 0.0, p.z.clamp(z0, z1))
            }
            Scenario::FlashCrowd if self.clock_s >= FLASH_AT_S => {
                let c = self.centre;
                let angle = self.unit() * std::f32::consts::TAU;
                let r = self.unit().sqrt() * FLASH_RADIUS_M;
                Vec3::new((c.x + angle.cos() * r).clamp(x0, x1), 0.0, (c.z + angle.sin() * r).clamp(z0, z1))
            }
            Scenario::Hotspot if !self.hotspots.is_empty() => {
                let i = self.next() as usize % self.hotspots.len();
                let c = self.hotspots[i];
                let angle = self.unit() * std::f32::consts::TAU;
                let r = self.unit() * 12.0;
                Vec3::new((c.x + angle.cos() * r).clamp(x0, x1), 0.0, (c.z + angle.sin() * r).clamp(z0, z1))
            }
            _ => {
                // Wanderers roam a region around the spawn points (a town, not the whole
                // continent), so they keep meeting each other.
                let c = self.centre;
                let angle = self.unit() * std::f32::consts::TAU;
                let r = self.unit().sqrt() * WANDER_RADIUS_M;
                Vec3::new((c.x + angle.cos() * r).clamp(x0, x1), 0.0, (c.z + angle.sin() * r).clamp(z0, z1))
            }
        }
    }

    /// Builders stand where they landed, each facing its own way (so their objects spread);
    /// riders walk to a spot on their platform's stop and wait there.
    fn builders_intent(&mut self, here: Vec3, _yaw_rad: f32) -> Intent {
        let own_yaw = (self.traits % 360) as f32 * std::f32::consts::PI / 180.0;
        if self.builder || self.stops.is_empty() {
            return Intent { yaw_rad: own_yaw, ..Intent::default() };
        }
        // Riders spread over the platforms by their traits, and over a ring on each.
        let pick = (self.traits >> 9) as usize % self.stops.len();
        let ring = Vec3::new(own_yaw.cos(), 0.0, own_yaw.sin()) * 1.2 * ((self.traits >> 20) % 2) as f32;
        let stop = *self.stop.get_or_insert(self.stops[pick] + ring);
        let d = Vec3::new(stop.x - here.x, 0.0, stop.z - here.z);
        if d.length() < 0.5 {
            return Intent { yaw_rad: own_yaw, ..Intent::default() };
        }
        Intent { move_z: 1.0, yaw_rad: d.x.atan2(d.z), buttons: Buttons(Buttons::RUN), ..Intent::default() }
    }

    /// The intent for the next update, given the last frame.
    pub fn intent(&mut self, frame: &Frame) -> Intent {
        self.updates += 1;
        let Some(me) = frame.me else { return Intent::default() };
        let here = me.position_m;
        if self.scenario == Scenario::Builders {
            return self.builders_intent(here, me.yaw_rad);
        }
        let arrived = self.waypoint.is_none_or(|w| Vec3::new(w.x - here.x, 0.0, w.z - here.z).length() < 2.0);
        // Stuck against a wall or in a crowd: try somewhere else.
        if self.updates.is_multiple_of(STUCK_CHECK_UPDATES) {
            let stuck = self.checkpoint.is_some_and(|c| (c - here).length() < STUCK_DISTANCE_M);
            self.checkpoint = Some(here);
            if stuck {
                // A short detour in a random direction slides it along whatever blocks it.
                let angle = self.unit() * std::f32::consts::TAU;
                let [x0, z0, x1, z1] = self.bounds;
                let detour = here + Vec3::new(angle.cos(), 0.0, angle.sin()) * DETOUR_M;
                self.waypoint = Some(Vec3::new(detour.x.clamp(x0, x1), 0.0, detour.z.clamp(z0, z1)));
            }
        }
        if arrived || (self.scenario != Scenario::Border && self.next().is_multiple_of(600)) {
            self.waypoint = Some(self.pick_waypoint());
        }
        let w = self.waypoint.unwrap_or(here);
        let yaw = (w.x - here.x).atan2(w.z - here.z);
        // Players hold run for a while, not a different choice every tick.
        if self.next().is_multiple_of(150) {
            self.running = !self.running || self.next().is_multiple_of(3);
        }
        let mut buttons = if self.running { Buttons::RUN } else { 0 };
        if self.next().is_multiple_of(300) {
            buttons |= Buttons::JUMP;
        }
        let mut intent = Intent { move_z: 1.0, yaw_rad: yaw, buttons: Buttons(buttons), ..Intent::default() };
        let shoots = match self.scenario {
            Scenario::Shooters => true,
            Scenario::Border => (self.traits >> 12) & 1 == 1,
            _ => false,
        };
        if shoots {
            let target = frame
                .others
                .iter()
                .filter(|o| o.health > 0 && o.id < pwn_sim::ids::WORLD_ENTITY_ID_BASE)
                .map(|o| o.position_m)
                .min_by(|a, b| a.distance_squared(here).total_cmp(&b.distance_squared(here)))
                .filter(|t| t.distance(here) < AIM_RANGE_M);
            if let Some(t) = target {
                let d = t - here;
                let aim = d.x.atan2(d.z);
                // Moving and aiming share one yaw: strafe relative to the aim.
                let rel = yaw - aim;
                intent.move_x = rel.sin();
                intent.move_z = rel.cos();
                intent.yaw_rad = aim;
                intent.pitch_rad = d.y.atan2(Vec3::new(d.x, 0.0, d.z).length());
                intent.buttons = Buttons(intent.buttons.0 | Buttons::FIRE);
            }
        }
        intent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwn_client::Drawn;

    fn frame_at(p: Vec3, others: Vec<Drawn>) -> Frame {
        Frame { me: Some(Drawn { id: 1, position_m: p, yaw_rad: 0.0, health: 100 }), others, ..Frame::default() }
    }

    #[test]
    fn movers_head_for_waypoints_inside_the_world_and_shooters_aim() {
        let bounds = [-50.0, -50.0, 50.0, 50.0];
        for scenario in [Scenario::Wander, Scenario::Hotspot] {
            let mut m = Mover::new(scenario, 3, bounds, &[[10.0, 1.0, 10.0]]);
            for _ in 0..50 {
                let i = m.intent(&frame_at(Vec3::ZERO, vec![]));
                assert_eq!(i.move_z, 1.0);
                let w = m.waypoint.unwrap();
                assert!(w.x.abs() <= 46.0 && w.z.abs() <= 46.0, "inside the world: {w}");
                assert_eq!(i.buttons.0 & Buttons::FIRE, 0);
            }
        }
        let mut s = Mover::new(Scenario::Shooters, 3, bounds, &[]);
        let enemy = Drawn { id: 2, position_m: Vec3::new(10.0, 0.0, 0.0), yaw_rad: 0.0, health: 100 };
        let i = s.intent(&frame_at(Vec3::ZERO, vec![enemy]));
        assert_ne!(i.buttons.0 & Buttons::FIRE, 0);
        assert!((i.yaw_rad - std::f32::consts::FRAC_PI_2).abs() < 1e-5, "aims at +x: {}", i.yaw_rad);
        assert_eq!(Mover::new(Scenario::Wander, 1, bounds, &[]).intent(&Frame::default()), Intent::default());
        // Border dancers alternate sides of their border, within reach of the centre.
        let mut d = Mover::new(Scenario::Border, 5, [-500.0, -500.0, 500.0, 500.0], &[[0.0, 1.0, 0.0]]);
        let mut sides = Vec::new();
        for _ in 0..6 {
            let w = d.pick_waypoint();
            d.waypoint = Some(w);
            assert!(
                w.x.abs() <= BORDER_REACH_M + BORDER_SWING_M && w.z.abs() <= BORDER_REACH_M + BORDER_SWING_M,
                "{w}"
            );
            let across = if (d.traits >> 4) & 1 == 0 { w.x } else { w.z };
            assert!(across.abs() >= BORDER_SWING_M / 4.0 - 1e-3, "past the border: {w}");
            sides.push(across.signum());
        }
        assert!(sides.windows(2).all(|p| p[0] != p[1]), "sides alternate: {sides:?}");
        assert!("nope".parse::<Scenario>().is_err());
        assert_eq!("shooters".parse::<Scenario>().unwrap(), Scenario::Shooters);
    }

    #[test]
    fn a_flash_crowd_converges_a_chat_storm_chats_and_a_mixed_day_mixes() {
        let bounds = [-500.0, -500.0, 500.0, 500.0];
        let spawn = [[100.0, 1.0, 50.0]];
        let mut m = Mover::new(Scenario::FlashCrowd, 9, bounds, &spawn);
        let far = Vec3::new(300.0, 0.0, -200.0);
        m.set_clock_s(1.0);
        m.intent(&frame_at(far, vec![]));
        let before = m.waypoint.unwrap();
        assert!(before.distance(Vec3::new(100.0, 0.0, 50.0)) <= WANDER_RADIUS_M + 1.0, "wanders first: {before}");
        m.set_clock_s(FLASH_AT_S + 0.1);
        for _ in 0..20 {
            m.intent(&frame_at(far, vec![]));
            let w = m.waypoint.unwrap();
            assert!(w.distance(Vec3::new(100.0, 0.0, 50.0)) <= FLASH_RADIUS_M + 1e-3, "converges: {w}");
        }
        assert_eq!(Scenario::ChatStorm.chat_period_s(), Some(CHAT_STORM_PERIOD_S));
        assert_eq!(Scenario::Wander.chat_period_s(), None);
        // Every share of the mixed day is taken, in about its proportion.
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..1_000 {
            let b = Scenario::Mixed.for_bot(i);
            assert_ne!(b, Scenario::Mixed);
            *counts.entry(b.to_string()).or_insert(0) += 1;
        }
        for (s, share) in MIXED_DAY_SHARES {
            let n = counts[&s.to_string()];
            assert!((n as i64 - share as i64 * 10).abs() <= 20, "{s}: {n} of 1000 for {share}%");
        }
        assert_eq!(Scenario::LoginStorm.joins_per_s(100.0), LOGIN_STORM_JOINS_PER_S);
        assert_eq!(Scenario::Wander.joins_per_s(100.0), 100.0);
        for name in ["flash-crowd", "chat-storm", "login-storm", "mixed"] {
            assert_eq!(name.parse::<Scenario>().unwrap().to_string(), name);
            assert!(name.parse::<Scenario>().unwrap().parameters().len() >= 3);
        }
    }
}
