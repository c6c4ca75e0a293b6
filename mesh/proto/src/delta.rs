//! Snapshot delta encoding: the server sends each client only what changed since a snapshot
//! the client acknowledged; entities at rest cost nothing once the client has them.
//!
//! Rules:
//! - `[delta-1]` an entity unchanged since the baseline is not sent at all;
//! - `[delta-2]` a changed entity carries only its changed fields;
//! - `[delta-3]` an entity new to the baseline carries every field; a partial update of an
//!   entity the client does not hold is a protocol violation;
//! - `[delta-4]` entities in the baseline but not in the new view are listed as removed.

use crate::codec::Violation;
use crate::messages::EntityUpdate;
use std::collections::BTreeMap;

/// One entity's full quantized state, as both ends hold it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct EntityState {
    /// Global entity id.
    pub id: u64,
    /// Position on pwn-sim's grid.
    pub position: [i32; 3],
    /// Velocity on pwn-sim's grid.
    pub velocity: [i16; 3],
    /// Heading.
    pub yaw: u16,
    /// Orientation, smallest-three.
    pub rotation: u32,
    /// Health.
    pub health: u16,
}

/// A client's (or the server's record of a client's) view: entity id to state.
pub type View = BTreeMap<u64, EntityState>;

fn changed<T: PartialEq + Copy>(old: Option<T>, new: T) -> Option<T> {
    if old == Some(new) { None } else { Some(new) }
}

/// The updates and removals that turn `baseline` into `current`.
pub fn diff(baseline: &View, current: &View) -> (Vec<EntityUpdate>, Vec<u64>) {
    let mut updates = Vec::new();
    for (id, now) in current {
        let old = baseline.get(id);
        let u = EntityUpdate {
            id: *id,
            position: changed(old.map(|o| o.position), now.position),
            velocity: changed(old.map(|o| o.velocity), now.velocity),
            yaw: changed(old.map(|o| o.yaw), now.yaw),
            rotation: changed(old.map(|o| o.rotation), now.rotation),
            health: changed(old.map(|o| o.health), now.health),
        };
        let any = u.position.is_some()
            || u.velocity.is_some()
            || u.yaw.is_some()
            || u.rotation.is_some()
            || u.health.is_some();
        if any || old.is_none() {
            updates.push(u);
        }
    }
    let removed = baseline.keys().filter(|id| !current.contains_key(id)).copied().collect();
    (updates, removed)
}

/// Applies updates and removals to `baseline`, giving the new view.
pub fn apply(baseline: &View, updates: &[EntityUpdate], removed: &[u64]) -> Result<View, Violation> {
    let mut view = baseline.clone();
    for id in removed {
        view.remove(id);
    }
    for u in updates {
        let state = match view.get(&u.id) {
            Some(old) => EntityState {
                id: u.id,
                position: u.position.unwrap_or(old.position),
                velocity: u.velocity.unwrap_or(old.velocity),
                yaw: u.yaw.unwrap_or(old.yaw),
                rotation: u.rotation.unwrap_or(old.rotation),
                health: u.health.unwrap_or(old.health),
            },
            None => match (u.position, u.velocity, u.yaw, u.rotation, u.health) {
                (Some(position), Some(velocity), Some(yaw), Some(rotation), Some(health)) => {
                    EntityState { id: u.id, position, velocity, yaw, rotation, health }
                }
                _ => {
                    return Err(Violation::OutOfRange {
                        field: "snapshot.entities",
                        why: format!("partial update of entity {} the client does not hold", u.id),
                    });
                }
            },
        };
        view.insert(u.id, state);
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_state() -> impl Strategy<Value = EntityState> {
        (0u64..40, any::<[i32; 3]>(), any::<[i16; 3]>(), 0u16..4, 0u32..4, 0u16..3).prop_map(
            |(id, position, velocity, yaw, rotation, health)| EntityState {
                id,
                position,
                velocity,
                yaw,
                rotation,
                health,
            },
        )
    }

    fn arb_view() -> impl Strategy<Value = View> {
        proptest::collection::vec(arb_state(), 0..30).prop_map(|v| v.into_iter().map(|s| (s.id, s)).collect())
    }

    proptest! {
        #[test]
        fn delta_1_to_4_apply_of_diff_reproduces_the_view(baseline in arb_view(), current in arb_view()) {
            let (updates, removed) = diff(&baseline, &current);
            prop_assert_eq!(apply(&baseline, &updates, &removed).unwrap(), current.clone());
            // [delta-1]: nothing is sent for entities that did not change.
            for u in &updates {
                prop_assert!(baseline.get(&u.id) != current.get(&u.id));
            }
        }
    }

    #[test]
    fn delta_3_partial_update_of_an_unknown_entity_is_a_violation() {
        let u = EntityUpdate { id: 9, position: Some([1, 2, 3]), ..Default::default() };
        assert!(apply(&View::new(), &[u], &[]).is_err());
    }
}
