//! Player input for one tick, and the rules that make any input safe to simulate.
//!
//! Inputs come from the network, so they are hostile until sanitized: non-finite numbers become
//! zero, the move vector is clamped to unit length, angles are wrapped and clamped, unknown button
//! bits are dropped, and sequence numbers must move forward by a bounded step.

use crate::ids::InputSeq;
use serde::{Deserialize, Serialize};

/// Largest forward jump of sequence numbers accepted at once (about 8.5 s at 30 Hz). A larger
/// jump is a broken or malicious client: accepting it would make every later honest input "old".
pub const INPUT_SEQ_JUMP_MAX: u32 = 256;
/// Pitch is clamped to this many radians either side of level (just under 90 degrees).
pub const PITCH_MAX_RAD: f32 = 1.55;

/// Button bits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Buttons(pub u8);

impl Buttons {
    /// Jump (acts on the ground only).
    pub const JUMP: u8 = 1;
    /// Run instead of walk.
    pub const RUN: u8 = 2;
    /// Fire a projectile (subject to the fire interval).
    pub const FIRE: u8 = 4;
    /// All bits that mean something.
    pub const ALL: u8 = Self::JUMP | Self::RUN | Self::FIRE;

    /// Whether all of `bits` are set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// What a player asks for in one tick.
#[derive(Copy, Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct PlayerInput {
    /// One per tick, increasing.
    pub seq: InputSeq,
    /// Strafe, -1 (left) to 1 (right), relative to `yaw`.
    pub move_x: f32,
    /// Forward, -1 (back) to 1 (forward), relative to `yaw`.
    pub move_z: f32,
    /// Heading in radians; 0 faces +Z, positive turns towards +X.
    pub yaw_rad: f32,
    /// Aim elevation in radians; positive looks up.
    pub pitch_rad: f32,
    /// Button bits, see [`Buttons`].
    pub buttons: Buttons,
    /// The server tick whose world the player was drawing when it made this input (remote
    /// characters are drawn an interpolation delay in the past): a shot fired with it is hit
    /// tested against characters where they were at that tick (lag compensation, bounded by
    /// [`crate::lagcomp::REWIND_TICKS_MAX`] and by what the zone allows). 0: not known, no
    /// rewind.
    #[serde(default)]
    pub view_tick: u64,
}

fn finite_or_zero(v: f32) -> f32 {
    if v.is_finite() { v } else { 0.0 }
}

impl PlayerInput {
    /// The same input with every field forced into its valid range.
    pub fn sanitized(self) -> Self {
        let mut mx = finite_or_zero(self.move_x);
        let mut mz = finite_or_zero(self.move_z);
        // Clamp huge components first so the length below cannot overflow to infinity.
        mx = mx.clamp(-1.0, 1.0);
        mz = mz.clamp(-1.0, 1.0);
        let len = (mx * mx + mz * mz).sqrt();
        if len > 1.0 {
            mx /= len;
            mz /= len;
        }
        let yaw = finite_or_zero(self.yaw_rad);
        let yaw = (yaw + std::f32::consts::PI).rem_euclid(std::f32::consts::TAU) - std::f32::consts::PI;
        // rem_euclid can round up to exactly TAU for tiny negative inputs.
        let yaw = if yaw.is_finite() && yaw.abs() <= std::f32::consts::PI { yaw } else { 0.0 };
        Self {
            seq: self.seq,
            move_x: mx,
            move_z: mz,
            yaw_rad: yaw,
            pitch_rad: finite_or_zero(self.pitch_rad).clamp(-PITCH_MAX_RAD, PITCH_MAX_RAD),
            buttons: Buttons(self.buttons.0 & Buttons::ALL),
            view_tick: self.view_tick,
        }
    }

    /// Unit vector the character faces on the ground plane.
    pub fn forward(&self) -> glam::Vec3 {
        glam::Vec3::new(self.yaw_rad.sin(), 0.0, self.yaw_rad.cos())
    }

    /// The desired horizontal direction in world space, length at most 1.
    pub fn world_move(&self) -> glam::Vec3 {
        let fwd = self.forward();
        let right = glam::Vec3::new(fwd.z, 0.0, -fwd.x);
        fwd * self.move_z + right * self.move_x
    }

    /// Unit aim direction from yaw and pitch.
    pub fn aim(&self) -> glam::Vec3 {
        let (sp, cp) = self.pitch_rad.sin_cos();
        glam::Vec3::new(self.yaw_rad.sin() * cp, sp, self.yaw_rad.cos() * cp)
    }
}

/// What to do with an input, given the last sequence number applied for that player.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The next input to apply (possibly after a gap of lost inputs).
    Apply,
    /// Already applied or older: a duplicate or a late arrival.
    Stale,
    /// Too far ahead of the last applied input to be honest.
    TooFarAhead,
}

/// Classifies `seq` against the last applied sequence number (`None` before the first input).
pub fn check_seq(last_applied: Option<InputSeq>, seq: InputSeq) -> SeqVerdict {
    match last_applied {
        None => SeqVerdict::Apply,
        Some(last) if seq <= last => SeqVerdict::Stale,
        Some(last) if seq.0 - last.0 > INPUT_SEQ_JUMP_MAX => SeqVerdict::TooFarAhead,
        Some(_) => SeqVerdict::Apply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            any::<f32>(),
            Just(f32::NAN),
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            Just(f32::MAX),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn sanitized_inputs_are_always_in_range(
            mx in any_f32(), mz in any_f32(), yaw in any_f32(), pitch in any_f32(), b in any::<u8>()
        ) {
            let i = PlayerInput { seq: InputSeq(1), move_x: mx, move_z: mz, yaw_rad: yaw, pitch_rad: pitch, buttons: Buttons(b), view_tick: 0 }.sanitized();
            prop_assert!(i.move_x.is_finite() && i.move_z.is_finite());
            prop_assert!((i.move_x * i.move_x + i.move_z * i.move_z).sqrt() <= 1.0 + 1e-5);
            prop_assert!(i.yaw_rad.abs() <= std::f32::consts::PI);
            prop_assert!(i.pitch_rad.abs() <= PITCH_MAX_RAD);
            prop_assert_eq!(i.buttons.0 & !Buttons::ALL, 0);
            prop_assert!(i.world_move().length() <= 1.0 + 1e-5);
            prop_assert!((i.aim().length() - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn sequence_rules() {
        assert_eq!(check_seq(None, InputSeq(5)), SeqVerdict::Apply);
        assert_eq!(check_seq(Some(InputSeq(5)), InputSeq(5)), SeqVerdict::Stale);
        assert_eq!(check_seq(Some(InputSeq(5)), InputSeq(4)), SeqVerdict::Stale);
        assert_eq!(check_seq(Some(InputSeq(5)), InputSeq(9)), SeqVerdict::Apply);
        assert_eq!(check_seq(Some(InputSeq(5)), InputSeq(5 + INPUT_SEQ_JUMP_MAX + 1)), SeqVerdict::TooFarAhead);
        assert_eq!(check_seq(Some(InputSeq(5)), InputSeq(u32::MAX)), SeqVerdict::TooFarAhead);
    }
}
