//! The world description: static geometry, dynamic crates, spawn points, object kinds and
//! moving platforms, as data that
//! loads from a TOML file (`worlds/arena.toml` is the default world written out).
//!
//! Everything read here is untrusted (an operator's file), so `validate` bounds counts and
//! sizes and rejects non-finite numbers before rapier ever sees them.

use serde::{Deserialize, Serialize};

/// Most static boxes a world may hold.
pub const STATIC_BOX_COUNT_MAX: usize = 100_000;
/// Most crates a world may hold.
pub const CRATE_COUNT_MAX: usize = 100_000;
/// Most spawn points a world may hold.
pub const SPAWN_POINT_COUNT_MAX: usize = 10_000;
/// Largest world edge; positions quantize exactly up to 2^13 m from the origin.
pub const WORLD_SIZE_MAX_M: f32 = 16_384.0;
/// Largest half extent of any box.
pub const HALF_EXTENT_MAX_M: f32 = 8_192.0;

/// A whole world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldDesc {
    /// A human name for logs and reports.
    pub name: String,
    /// The world's minimum corner on the XZ plane.
    pub origin_m: [f32; 2],
    /// The world's extent along X and Z.
    pub size_m: [f32; 2],
    /// Height of the flat ground plane that covers the whole world.
    #[serde(default)]
    pub ground_y_m: f32,
    /// Static boxes: walls, platforms, ramps (a box rotated about X or Z).
    #[serde(default, rename = "box")]
    pub boxes: Vec<BoxDesc>,
    /// Dynamic boxes that can be pushed and shot.
    #[serde(default, rename = "crate")]
    pub crates: Vec<CrateDesc>,
    /// Where characters appear; at least one.
    pub spawn_points: Vec<[f32; 3]>,
    /// Kinds of objects players may place (`crate::object`); their index is their kind number.
    #[serde(default, rename = "object_kind")]
    pub object_kinds: Vec<crate::object::ObjectKind>,
    /// Moving platforms: lifts, ferries, gates (`crate::platform`).
    #[serde(default, rename = "platform")]
    pub platforms: Vec<crate::platform::PlatformDesc>,
}

/// A static, oriented box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxDesc {
    /// Centre.
    pub center_m: [f32; 3],
    /// Half extents along the box's own axes.
    pub half_extents_m: [f32; 3],
    /// Rotation as Euler angles about X, Y, Z (applied in that order), degrees.
    #[serde(default)]
    pub rotation_deg: [f32; 3],
}

/// A dynamic crate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrateDesc {
    /// Centre at the start.
    pub center_m: [f32; 3],
    /// Half extents.
    pub half_extents_m: [f32; 3],
    /// Density in kg/m^3.
    #[serde(default = "default_crate_density")]
    pub density_kgpm3: f32,
}

fn default_crate_density() -> f32 {
    100.0
}

/// Why a world description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DescError {
    /// The file could not be read.
    #[error("cannot read world file {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The text is not a valid world description.
    #[error("world description is not valid TOML for a world: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid world description: {0}")]
    Invalid(String),
}

fn finite(what: &str, values: &[f32]) -> Result<(), DescError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(DescError::Invalid(format!("{what} has a non-finite number")))
    }
}

fn extents(what: &str, h: [f32; 3]) -> Result<(), DescError> {
    finite(what, &h)?;
    if h.iter().all(|v| *v > 0.0 && *v <= HALF_EXTENT_MAX_M) {
        Ok(())
    } else {
        Err(DescError::Invalid(format!("{what} half extents must be in (0, {HALF_EXTENT_MAX_M}] m")))
    }
}

impl WorldDesc {
    /// Parses and validates a TOML world description.
    pub fn from_toml(text: &str) -> Result<Self, DescError> {
        let desc: WorldDesc = toml::from_str(text)?;
        desc.validate()?;
        Ok(desc)
    }

    /// Reads, parses and validates a world file.
    pub fn load(path: &std::path::Path) -> Result<Self, DescError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| DescError::Io { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// The world's bounds on the ground plane: `[min_x, min_z, max_x, max_z]`.
    pub fn xz_bounds(&self) -> [f32; 4] {
        [self.origin_m[0], self.origin_m[1], self.origin_m[0] + self.size_m[0], self.origin_m[1] + self.size_m[1]]
    }

    /// Whether an XZ point lies inside the world bounds.
    pub fn contains_xz(&self, x: f32, z: f32) -> bool {
        x >= self.origin_m[0]
            && z >= self.origin_m[1]
            && x < self.origin_m[0] + self.size_m[0]
            && z < self.origin_m[1] + self.size_m[1]
    }

    /// Checks counts, sizes and numbers.
    pub fn validate(&self) -> Result<(), DescError> {
        finite("origin_m", &self.origin_m)?;
        finite("size_m", &self.size_m)?;
        finite("ground_y_m", &[self.ground_y_m])?;
        let far = self
            .origin_m
            .iter()
            .zip(self.size_m)
            .any(|(o, s)| s <= 0.0 || s > WORLD_SIZE_MAX_M || o.abs() > WORLD_SIZE_MAX_M || (o + s).abs() > 8192.0);
        if far {
            return Err(DescError::Invalid(format!(
                "world bounds must be positive, at most {WORLD_SIZE_MAX_M} m, and within 8192 m of the origin"
            )));
        }
        if self.boxes.len() > STATIC_BOX_COUNT_MAX {
            return Err(DescError::Invalid(format!("more than {STATIC_BOX_COUNT_MAX} boxes")));
        }
        if self.crates.len() > CRATE_COUNT_MAX {
            return Err(DescError::Invalid(format!("more than {CRATE_COUNT_MAX} crates")));
        }
        if self.spawn_points.is_empty() || self.spawn_points.len() > SPAWN_POINT_COUNT_MAX {
            return Err(DescError::Invalid(format!("need 1 to {SPAWN_POINT_COUNT_MAX} spawn points")));
        }
        for (i, b) in self.boxes.iter().enumerate() {
            finite(&format!("box {i}"), &b.center_m)?;
            finite(&format!("box {i}"), &b.rotation_deg)?;
            extents(&format!("box {i}"), b.half_extents_m)?;
        }
        for (i, c) in self.crates.iter().enumerate() {
            finite(&format!("crate {i}"), &c.center_m)?;
            extents(&format!("crate {i}"), c.half_extents_m)?;
            if !(c.density_kgpm3.is_finite() && c.density_kgpm3 > 0.0 && c.density_kgpm3 < 1e5) {
                return Err(DescError::Invalid(format!("crate {i} density must be in (0, 1e5)")));
            }
            if !self.contains_xz(c.center_m[0], c.center_m[2]) {
                return Err(DescError::Invalid(format!("crate {i} is outside the world")));
            }
        }
        if self.object_kinds.len() > crate::object::OBJECT_KIND_COUNT_MAX {
            return Err(DescError::Invalid(format!("more than {} object kinds", crate::object::OBJECT_KIND_COUNT_MAX)));
        }
        for (i, k) in self.object_kinds.iter().enumerate() {
            k.validate(&format!("object kind {i}")).map_err(DescError::Invalid)?;
        }
        if self.platforms.len() > crate::platform::PLATFORM_COUNT_MAX {
            return Err(DescError::Invalid(format!("more than {} platforms", crate::platform::PLATFORM_COUNT_MAX)));
        }
        for (i, p) in self.platforms.iter().enumerate() {
            crate::platform::validate(&format!("platform {i}"), p, |x, z| self.contains_xz(x, z))
                .map_err(DescError::Invalid)?;
        }
        for (i, p) in self.spawn_points.iter().enumerate() {
            finite(&format!("spawn point {i}"), p)?;
            if !self.contains_xz(p[0], p[2]) {
                return Err(DescError::Invalid(format!("spawn point {i} is outside the world")));
            }
        }
        Ok(())
    }

    /// A flat world of `size_m` square centred on the origin, with one spawn point: the base
    /// for tests that build their own scenes.
    pub fn flat(size_m: f32) -> Self {
        Self {
            name: "flat".into(),
            origin_m: [-size_m / 2.0, -size_m / 2.0],
            size_m: [size_m, size_m],
            ground_y_m: 0.0,
            boxes: Vec::new(),
            crates: Vec::new(),
            spawn_points: vec![[0.0, 1.0, 0.0]],
            object_kinds: Vec::new(),
            platforms: Vec::new(),
        }
    }

    /// The default world (the same as `worlds/arena.toml`): 8192 m square, an arena at the
    /// centre with walls, ramps, platforms and crates, and spawn points around it.
    pub fn arena() -> Self {
        Self::from_toml(ARENA_TOML).expect("the built-in arena is valid")
    }
}

/// The text of the default world, kept in the repository as `worlds/arena.toml`.
pub const ARENA_TOML: &str = include_str!("../../worlds/arena.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_parses_and_validates() {
        let a = WorldDesc::arena();
        assert!(!a.spawn_points.is_empty());
        assert!(!a.crates.is_empty());
    }

    #[test]
    fn the_workshop_world_parses_with_its_kinds_and_platforms() {
        let w = WorldDesc::from_toml(include_str!("../../worlds/workshop.toml")).unwrap();
        assert_eq!(
            w.object_kinds.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["wall", "door", "block", "sign"]
        );
        assert_eq!(w.platforms.len(), 3);
    }

    #[test]
    fn bad_worlds_are_refused_with_a_reason() {
        let mut w = WorldDesc::flat(100.0);
        w.spawn_points.clear();
        assert!(w.validate().unwrap_err().to_string().contains("spawn points"));
        let mut w = WorldDesc::flat(100.0);
        w.boxes.push(BoxDesc { center_m: [0.0, f32::NAN, 0.0], half_extents_m: [1.0; 3], rotation_deg: [0.0; 3] });
        assert!(w.validate().unwrap_err().to_string().contains("non-finite"));
        let mut w = WorldDesc::flat(100.0);
        w.spawn_points[0] = [500.0, 0.0, 0.0];
        assert!(w.validate().is_err());
        assert!(WorldDesc::from_toml("name = 3").is_err());
    }
}
