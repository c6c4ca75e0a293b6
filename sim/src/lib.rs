//! pwn-sim: the shared, deterministic simulation of a PWN world.
//!
//! The zone node runs it authoritatively; the client runs it to predict its own player. It does
//! no IO, reads no clock and draws randomness only from its seed, so the same world description,
//! configuration, seed and inputs give bit-identical state on every machine that runs the same
//! build (rapier3d with `enhanced-determinism`).
//!
//! # Layout
//! - [`ids`]: global entity ids and their ranges, input sequence numbers, ticks.
//! - [`config`]: tick rate, character and projectile parameters, with a digest for handshakes.
//! - [`desc`]: the world description (ground, static boxes, crates, spawn points), from TOML.
//! - [`input`]: per-tick player input and the rules that make any input safe.
//! - [`quantize`]: the grids for positions, velocities, angles and rotations used by the sim and
//!   the wire alike.
//! - [`character`] and [`projectile`]: the moving parts; `controller` moves characters, with
//!   other characters kept apart through a grid of start-of-tick positions (`neighbors`).
//! - [`Sim`] (in `world` and `step`): building a world, stepping it, predicting one character.
//! - [`object`]: world objects players place, of kinds the world file declares.
//! - [`platform`]: moving platforms whose pose is a pure function of the tick.
//! - [`snapshot`]: whole-world and predicted-state snapshots, and the state hash.
//! - [`lagcomp`]: where characters were in the last second, so shots hit what their shooter
//!   saw (lag compensation, bounded).
//! - [`handover`]: what crosses between simulations in a partitioned world: projectiles taken
//!   out and flown on elsewhere, crates simulated here, held as another zone's ghosts, or left out.
//!
//! # Example
//! ```
//! use pwn_sim::{EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
//! use std::collections::BTreeMap;
//!
//! let mut sim = Sim::new(WorldDesc::arena(), SimConfig::default(), 42).unwrap();
//! let me = EntityId(1);
//! sim.spawn_character(me).unwrap();
//! let mut inputs = BTreeMap::new();
//! inputs.insert(me, PlayerInput { seq: InputSeq(1), move_z: 1.0, ..Default::default() });
//! let report = sim.step(&inputs);
//! assert_eq!(report.inputs_applied, 1);
//! ```

pub mod character;
pub mod config;
mod controller;
pub mod desc;
pub mod events;
pub mod handover;
pub mod hash;
pub mod ids;
pub mod input;
pub mod lagcomp;
mod neighbors;
pub mod object;
pub mod platform;
pub mod projectile;
pub mod quantize;
pub mod rng;
mod scene;
pub mod snapshot;
mod step;
mod world;

pub use character::CharacterState;
pub use config::{CharacterConfig, ConfigError, ProjectileConfig, SimConfig};
pub use desc::{BoxDesc, CrateDesc, DescError, WorldDesc};
pub use events::{DespawnReason, EntityKind, HitTarget, SimEvent};
pub use handover::CrateMode;
pub use ids::{EntityId, InputSeq, Tick};
pub use input::{Buttons, PlayerInput};
pub use object::{ObjectKind, ObjectRefused, ObjectView};
pub use platform::{PlatformDesc, PlatformPath};
pub use projectile::Projectile;
pub use snapshot::{PredictedState, SimSnapshot};
pub use step::StepReport;
pub use world::{CHARACTER_COUNT_MAX, CrateBody, Sim, SimError};

/// A digest of this build of the simulation: crate version, rapier version and the
/// configuration digest. Peers compare it at handshake, because prediction is exact only when
/// both ends run the same simulation with the same parameters.
pub fn build_digest(cfg: &SimConfig) -> u64 {
    let mut h = hash::StateHasher::new();
    h.bytes(env!("CARGO_PKG_VERSION").as_bytes());
    h.bytes(RAPIER_VERSION.as_bytes());
    h.u64(cfg.digest());
    h.finish()
}

/// The rapier3d version this crate is built against (kept in step with Cargo.toml).
pub const RAPIER_VERSION: &str = "0.36";
