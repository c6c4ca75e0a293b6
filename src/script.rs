//! Scripted players: deterministic wanderers that walk towards random waypoints around a few
//! hotspots (so crowds form), jump now and then and shoot at whoever is nearest. The same seed
//! gives the same inputs, so a headless run is reproducible (its final state hash is printed).

use pwn_sim::{Buttons, CharacterState, EntityId, InputSeq, PlayerInput};

/// Where wanderers go: waypoints within `radius_m` of one of the hotspots.
#[derive(Clone, Debug)]
pub struct Roam {
    /// Centres of attraction.
    pub hotspots: Vec<glam::Vec3>,
    /// Spread of waypoints around a hotspot.
    pub radius_m: f32,
    /// One player in this many shoots (1: everybody).
    pub shooter_every: u64,
}

/// One scripted player's intent.
#[derive(Clone, Debug)]
pub struct Wanderer {
    /// The character it drives.
    pub id: EntityId,
    rng: u64,
    waypoint: glam::Vec3,
    seq: u32,
}

impl Wanderer {
    /// A wanderer for `id`, seeded from `seed`.
    pub fn new(id: EntityId, seed: u64) -> Self {
        Self { id, rng: seed ^ id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15), waypoint: glam::Vec3::ZERO, seq: 0 }
    }

    fn next(&mut self) -> u32 {
        self.rng = self.rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.rng >> 33) as u32
    }

    /// The next input, given this character's state, the nearest other character and where to roam.
    pub fn input(&mut self, me: &CharacterState, nearest: Option<glam::Vec3>, roam: &Roam) -> PlayerInput {
        self.seq += 1;
        let to_waypoint = self.waypoint - me.position_m;
        if self.seq == 1
            || glam::Vec2::new(to_waypoint.x, to_waypoint.z).length() < 1.5
            || self.next().is_multiple_of(300)
        {
            let pick = self.next() as usize % roam.hotspots.len().max(1);
            let centre = roam.hotspots.get(pick).copied().unwrap_or(glam::Vec3::ZERO);
            let angle = (self.next() % 3600) as f32 / 3600.0 * std::f32::consts::TAU;
            let radius = (self.next() % 1000) as f32 / 1000.0 * roam.radius_m;
            self.waypoint = centre + glam::Vec3::new(angle.cos() * radius, 0.0, angle.sin() * radius);
        }
        let d = self.waypoint - me.position_m;
        let yaw = d.x.atan2(d.z);
        let mut buttons = 0;
        if !self.next().is_multiple_of(5) {
            buttons |= Buttons::RUN;
        }
        if self.next().is_multiple_of(40) {
            buttons |= Buttons::JUMP;
        }
        let mut aim_yaw = yaw;
        let mut pitch = 0.0;
        if let Some(target) = nearest.filter(|_| self.id.0.is_multiple_of(roam.shooter_every.max(1))) {
            let t = target - me.position_m;
            if t.length() < 25.0 && self.next().is_multiple_of(4) {
                aim_yaw = t.x.atan2(t.z);
                pitch = t.y.atan2(glam::Vec2::new(t.x, t.z).length());
                buttons |= Buttons::FIRE;
            }
        }
        // Moving and aiming share one yaw: when shooting, strafe relative to the aim.
        let rel = yaw - aim_yaw;
        PlayerInput {
            seq: InputSeq(self.seq),
            move_x: rel.sin(),
            move_z: rel.cos(),
            yaw_rad: aim_yaw,
            pitch_rad: pitch,
            buttons: Buttons(buttons),
            view_tick: 0,
        }
    }
}
