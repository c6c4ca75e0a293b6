//! Newtype ids shared by every PWN crate.
//!
//! Entity ids are global and never change across zones. The u64 space is split so that the
//! three sources of ids can never collide without coordinating:
//!
//! | range | who allocates |
//! |---|---|
//! | `[0, 2^62)` | players and gameplay entities, allocated by the store |
//! | `[2^62, 2^62 + 2^61)` | entities placed by the world description (crates), by their index |
//! | `[2^62 + 2^61, 2^63)` | world objects players place: a serial the store allocates, and the kind in the low 16 bits |
//! | `[2^63, 2^64)` | projectiles, derived from (owner, input sequence) |

use serde::{Deserialize, Serialize};

/// First id of the world-description range.
pub const WORLD_ENTITY_ID_BASE: u64 = 1 << 62;
/// First id of the world-object range.
pub const OBJECT_ID_BASE: u64 = WORLD_ENTITY_ID_BASE + (1 << 61);
/// Serials of world objects stay below this (45 bits above the kind's 16).
pub const OBJECT_SERIAL_LIMIT: u64 = 1 << 45;
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

    /// The id of the world object with store-allocated `serial` (below `OBJECT_SERIAL_LIMIT`)
    /// and `kind`: an object's kind never changes, so its id carries it and a client learns an
    /// object's shape from the id alone.
    pub fn object(serial: u64, kind: u16) -> Self {
        debug_assert!(serial < OBJECT_SERIAL_LIMIT);
        Self(OBJECT_ID_BASE + ((serial % OBJECT_SERIAL_LIMIT) << 16) + u64::from(kind))
    }

    /// Whether the id is a world object's.
    pub fn is_object(self) -> bool {
        (OBJECT_ID_BASE..PROJECTILE_ID_BASE).contains(&self.0)
    }

    /// A world object's kind, from its id.
    pub fn object_kind(self) -> Option<u16> {
        self.is_object().then_some((self.0 & 0xFFFF) as u16)
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
        let o = EntityId::object(12345, 7);
        assert!(o.is_object() && !o.is_projectile() && !o.is_gameplay());
        assert_eq!(o.object_kind(), Some(7));
        assert!(!EntityId::world_entity(99_999).is_object());
        assert_eq!(EntityId::object(OBJECT_SERIAL_LIMIT - 1, u16::MAX).0, PROJECTILE_ID_BASE - 1);
    }
}
