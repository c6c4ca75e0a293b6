//! Quantization rules shared by the simulation and the wire protocol.
//!
//! The server snaps character state to these grids after every tick and the client's prediction
//! does the same, so both sides compare exactly equal values and a correct prediction never
//! rolls back. Every `snap_*` is idempotent: `snap(snap(x)) == snap(x)`.
//!
//! - Positions: a grid of 1/1024 m in `i32` (exact for |x| < 8192 m in f32).
//! - Velocities: 1/64 m/s in `i16`, saturating at about +-512 m/s.
//! - Angles: a full turn in `u16` (yaw), a half turn in `i16` (pitch).
//! - Rotations: smallest-three, 2 bits of index and three 10-bit components in a `u32`.

use glam::{Quat, Vec3};

/// Grid steps per metre for positions.
pub const POSITION_STEPS_PER_M: f32 = 1024.0;
/// Grid steps per m/s for velocities.
pub const VELOCITY_STEPS_PER_MPS: f32 = 64.0;
/// Largest speed a quantized velocity component holds.
pub const VELOCITY_MAX_MPS: f32 = i16::MAX as f32 / VELOCITY_STEPS_PER_MPS;

fn to_steps_i32(v: f32, steps: f32) -> i32 {
    if v.is_finite() {
        // `as` saturates, so huge values pin to the edge of the grid instead of wrapping.
        (v * steps).round() as i32
    } else {
        0
    }
}

/// A position on the wire grid.
pub fn quantize_position(p: Vec3) -> [i32; 3] {
    [
        to_steps_i32(p.x, POSITION_STEPS_PER_M),
        to_steps_i32(p.y, POSITION_STEPS_PER_M),
        to_steps_i32(p.z, POSITION_STEPS_PER_M),
    ]
}

/// The position a grid point stands for.
pub fn dequantize_position(q: [i32; 3]) -> Vec3 {
    Vec3::new(q[0] as f32, q[1] as f32, q[2] as f32) / POSITION_STEPS_PER_M
}

/// `p` moved to the nearest grid point.
pub fn snap_position(p: Vec3) -> Vec3 {
    dequantize_position(quantize_position(p))
}

fn to_steps_i16(v: f32, steps: f32) -> i16 {
    // Symmetric range (i16::MIN is unused) so that the grid is the same in both directions.
    if v.is_finite() { (v * steps).round().clamp(-(i16::MAX as f32), i16::MAX as f32) as i16 } else { 0 }
}

/// A velocity on the wire grid (saturating).
pub fn quantize_velocity(v: Vec3) -> [i16; 3] {
    [
        to_steps_i16(v.x, VELOCITY_STEPS_PER_MPS),
        to_steps_i16(v.y, VELOCITY_STEPS_PER_MPS),
        to_steps_i16(v.z, VELOCITY_STEPS_PER_MPS),
    ]
}

/// The velocity a grid point stands for.
pub fn dequantize_velocity(q: [i16; 3]) -> Vec3 {
    Vec3::new(f32::from(q[0]), f32::from(q[1]), f32::from(q[2])) / VELOCITY_STEPS_PER_MPS
}

/// `v` moved to the nearest velocity grid point.
pub fn snap_velocity(v: Vec3) -> Vec3 {
    dequantize_velocity(quantize_velocity(v))
}

/// A yaw in radians as a fraction of a full turn.
pub fn quantize_yaw(yaw_rad: f32) -> u16 {
    if !yaw_rad.is_finite() {
        return 0;
    }
    let turns = (yaw_rad / std::f32::consts::TAU).rem_euclid(1.0);
    ((turns * 65_536.0).round() as u32 & 0xFFFF) as u16
}

/// The yaw (in `[-pi, pi)`) a quantized value stands for.
pub fn dequantize_yaw(q: u16) -> f32 {
    let turns = f32::from(q) / 65_536.0;
    let rad = turns * std::f32::consts::TAU;
    if rad >= std::f32::consts::PI { rad - std::f32::consts::TAU } else { rad }
}

/// `yaw_rad` moved to the nearest quantized heading.
pub fn snap_yaw(yaw_rad: f32) -> f32 {
    dequantize_yaw(quantize_yaw(yaw_rad))
}

/// A pitch in `[-pi/2, pi/2]` as an `i16`.
pub fn quantize_pitch(pitch_rad: f32) -> i16 {
    let p = if pitch_rad.is_finite() { pitch_rad } else { 0.0 };
    let unit = (p / std::f32::consts::FRAC_PI_2).clamp(-1.0, 1.0);
    (unit * 32_767.0).round() as i16
}

/// The pitch a quantized value stands for.
pub fn dequantize_pitch(q: i16) -> f32 {
    f32::from(q) / 32_767.0 * std::f32::consts::FRAC_PI_2
}

/// `pitch_rad` moved to the nearest quantized elevation.
pub fn snap_pitch(pitch_rad: f32) -> f32 {
    dequantize_pitch(quantize_pitch(pitch_rad))
}

const ROT_COMPONENT_BITS: u32 = 10;
/// An even number of steps (1022, one code unused) so that 0 is exactly representable and the
/// identity rotation survives quantization unchanged.
const ROT_COMPONENT_MAX: f32 = ((1 << ROT_COMPONENT_BITS) - 2) as f32;
/// The three smaller components of a unit quaternion lie in [-1/sqrt(2), 1/sqrt(2)].
const ROT_RANGE: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// A unit quaternion packed as smallest-three in 32 bits.
pub fn quantize_rotation(q: Quat) -> u32 {
    let mut c = q.to_array();
    if !c.iter().all(|v| v.is_finite()) {
        c = [0.0, 0.0, 0.0, 1.0];
    }
    let mut largest = 0;
    for i in 1..4 {
        if c[i].abs() > c[largest].abs() {
            largest = i;
        }
    }
    // q and -q are the same rotation: make the dropped component positive so it can be rebuilt.
    let sign = if c[largest] < 0.0 { -1.0 } else { 1.0 };
    let mut packed = largest as u32;
    for (i, v) in c.iter().enumerate() {
        if i == largest {
            continue;
        }
        let unit = ((v * sign / ROT_RANGE).clamp(-1.0, 1.0) + 1.0) * 0.5;
        packed = (packed << ROT_COMPONENT_BITS) | (unit * ROT_COMPONENT_MAX).round() as u32;
    }
    packed
}

/// The unit quaternion a packed rotation stands for.
pub fn dequantize_rotation(packed: u32) -> Quat {
    let largest = (packed >> (3 * ROT_COMPONENT_BITS)) as usize & 3;
    let mask = (1 << ROT_COMPONENT_BITS) - 1;
    let mut small = [0.0f32; 3];
    for (k, s) in small.iter_mut().enumerate() {
        let raw = (packed >> ((2 - k as u32) * ROT_COMPONENT_BITS)) & mask;
        *s = (raw as f32 / ROT_COMPONENT_MAX * 2.0 - 1.0) * ROT_RANGE;
    }
    let sum: f32 = small.iter().map(|v| v * v).sum();
    let mut c = [0.0f32; 4];
    let mut k = 0;
    for (i, slot) in c.iter_mut().enumerate() {
        if i == largest {
            *slot = (1.0 - sum).max(0.0).sqrt();
        } else {
            *slot = small[k];
            k += 1;
        }
    }
    // No renormalisation: the rebuilt component already makes it unit to rounding, and leaving
    // the three stored components untouched keeps re-quantization exact.
    Quat::from_array(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn positions_round_trip_within_half_a_step_and_snap_is_idempotent(
            x in -8000.0f32..8000.0, y in -500.0f32..500.0, z in -8000.0f32..8000.0
        ) {
            let p = Vec3::new(x, y, z);
            let s = snap_position(p);
            prop_assert!((s - p).abs().max_element() <= 0.5 / POSITION_STEPS_PER_M + 1e-3 * 0.5);
            prop_assert_eq!(snap_position(s), s);
            prop_assert_eq!(quantize_position(s), quantize_position(p));
        }

        #[test]
        fn velocities_saturate_and_snap_is_idempotent(x in any::<f32>(), y in -100.0f32..100.0) {
            let v = Vec3::new(x, y, 0.0);
            let s = snap_velocity(v);
            prop_assert!(s.is_finite());
            prop_assert!(s.abs().max_element() <= VELOCITY_MAX_MPS + 1e-3);
            prop_assert_eq!(snap_velocity(s), s);
        }

        #[test]
        fn angles_snap_idempotently(yaw in -10.0f32..10.0, pitch in -1.6f32..1.6) {
            prop_assert_eq!(snap_yaw(snap_yaw(yaw)), snap_yaw(yaw));
            prop_assert_eq!(snap_pitch(snap_pitch(pitch)), snap_pitch(pitch));
            let d = (snap_yaw(yaw) - yaw).rem_euclid(std::f32::consts::TAU);
            prop_assert!(d.min(std::f32::consts::TAU - d) < 1e-3);
        }

        #[test]
        fn rotations_round_trip_closely(
            ax in -1.0f32..1.0, ay in -1.0f32..1.0, az in -1.0f32..1.0, angle in -7.0f32..7.0
        ) {
            let axis = Vec3::new(ax, ay, az);
            prop_assume!(axis.length() > 1e-3);
            let q = Quat::from_axis_angle(axis.normalize(), angle);
            let r = dequantize_rotation(quantize_rotation(q));
            // Same rotation up to sign: |dot| close to 1 (about 0.3 degrees of error at most).
            prop_assert!(q.dot(r).abs() > 0.99999 - 1e-5, "{:?} vs {:?}", q, r);
            // Quantizing again does not drift further. (The packed bits may differ when two
            // components tie for largest; the rotation they stand for does not move.)
            let rr = dequantize_rotation(quantize_rotation(r));
            prop_assert!(q.dot(rr).abs() > 0.99999 - 1e-5, "{:?} drifted to {:?}", q, rr);
        }
    }

    #[test]
    fn non_finite_values_quantize_to_zero() {
        assert_eq!(quantize_position(Vec3::NAN), [0, 0, 0]);
        assert_eq!(quantize_velocity(Vec3::INFINITY), [0, 0, 0]);
        assert_eq!(quantize_yaw(f32::NAN), 0);
        assert_eq!(dequantize_rotation(quantize_rotation(Quat::from_array([f32::NAN; 4]))), Quat::IDENTITY);
    }
}
