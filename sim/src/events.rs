//! What a simulation step reports: hits, deaths, spawns and despawns, in a deterministic order.

use crate::ids::EntityId;
use serde::{Deserialize, Serialize};

/// What kind of entity an event is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    /// A player's character.
    Character,
    /// A projectile.
    Projectile,
    /// A dynamic crate from the world description.
    Crate,
}

/// What a projectile struck.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HitTarget {
    /// A character, which took damage.
    Character(EntityId),
    /// A crate, which was pushed.
    Crate(EntityId),
    /// A world object (pushed if it is dynamic).
    Object(EntityId),
    /// Static geometry.
    World,
}

/// Why an entity left the simulation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DespawnReason {
    /// A projectile hit something.
    Hit,
    /// A projectile ran out of lifetime or left the world.
    Expired,
    /// The caller removed it (logout, handoff).
    Removed,
}

/// One thing that happened during a step.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimEvent {
    /// A projectile hit something.
    Hit {
        /// The projectile.
        projectile: EntityId,
        /// Who fired it.
        shooter: EntityId,
        /// What it hit.
        target: HitTarget,
        /// Where, in world space.
        point_m: [f32; 3],
        /// Health removed (0 for anything but characters).
        damage: u16,
    },
    /// A character's health reached zero.
    Death {
        /// The character.
        entity: EntityId,
        /// Whose projectile did it, if anyone's.
        killer: Option<EntityId>,
    },
    /// An entity appeared (character spawn or respawn, projectile fired).
    Spawned {
        /// The entity.
        entity: EntityId,
        /// Its kind.
        kind: EntityKind,
    },
    /// An entity left.
    Despawned {
        /// The entity.
        entity: EntityId,
        /// Its kind.
        kind: EntityKind,
        /// Why.
        reason: DespawnReason,
    },
}
