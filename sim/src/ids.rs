//! Newtype ids shared by every PWN crate.
//!
//! Entity ids are global and never change across zones. The u64 space is split so that the
//! three sources of ids can never collide without coordinating:
//!
//! | range | who allocates |
//! |---|---|
//! | `[0, 2^62)` | players and gameplay entities, allocated by the store |
//! | `[2^62, 2^63)` | entities placed by the world description (crates), by their index |
//! | `[2^63, 2^64)` | projectiles, derived from (owner, input sequence) |

use serde::{Deserialize, Serialize};

/// First id of the world-description range.
pub const WORLD_ENTITY_ID_BASE: u64 = 1 << 62;
/// First id of the projectile range.
pub const PROJECTILE_ID_BASE: u64 = 1 << 63;

/// A global entity id, stable for the entity's whole life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityId(pub u64);

impl EntityId {
    /// The id of the `index`-th entity of the world description.
    pub fn world_entity(index: u32) -> Self {
        Self(WORLD_ENTITY_ID_BASE + u64::from(index))
    }

    /// The deterministic id of the projectile fired by `owner` with input `seq`.
    ///
    /// The client computes the same id for its predicted projectile, so the server's copy
    /// replaces the prediction instead of appearing beside it.
    pub fn projectile(owner: EntityId, seq: InputSeq) -> Self {
        let mixed = splitmix64(owner.0 ^ splitmix64(u64::from(seq.0)));
        Self(PROJECTILE_ID_BASE | (mixed >> 1))
    }

    /// Whether the id lies in the range the store allocates players and gameplay entities from.
    pub fn is_gameplay(self) -> bool {
        self.0 < WORLD_ENTITY_ID_BASE
    }

    /// Whether the id is a projectile's.
    pub fn is_projectile(self) -> bool {
        self.0 >= PROJECTILE_ID_BASE
    }
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// The sequence number a client stamps on each input; one per simulation tick.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct InputSeq(pub u32);

/// A simulation tick number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Tick(pub u64);

/// SplitMix64's finaliser: a cheap, well-mixed bijection on u64.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projectile_ids_are_deterministic_and_in_their_range() {
        let a = EntityId::projectile(EntityId(7), InputSeq(100));
        assert_eq!(a, EntityId::projectile(EntityId(7), InputSeq(100)));
        assert!(a.is_projectile());
        assert_ne!(a, EntityId::projectile(EntityId(7), InputSeq(101)));
        assert_ne!(a, EntityId::projectile(EntityId(8), InputSeq(100)));
        assert!(!EntityId::world_entity(3).is_gameplay());
        assert!(!EntityId::world_entity(3).is_projectile());
    }
}
