//! [`View`]: the entity states one client holds, sorted by id in one contiguous list.
//!
//! Every client keeps a few dozen views (one per snapshot, for baselines and interpolation)
//! and makes a new one per snapshot, and a zone does the same for every client; a sorted list
//! is copied with one allocation and merged with a sorted list of updates in one pass, where a
//! tree map allocates per node. The map-like methods keep call sites simple.

use crate::delta::EntityState;

/// Entity updates one snapshot carried.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateCounts {
    /// Every entity update.
    pub all: usize,
    /// Updates of world objects the receiver already held (ids in the object range, in the
    /// baseline): a change, or a dynamic object moving; an object at rest never has one.
    pub objects: usize,
}

/// Entity states sorted by id, at most one per id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    states: Vec<EntityState>,
}

impl View {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// A view of states already sorted by id without duplicates (checked; otherwise they are
    /// sorted, and the last state of an id wins).
    pub fn from_states(mut states: Vec<EntityState>) -> Self {
        if !states.windows(2).all(|w| w[0].id < w[1].id) {
            // Stable sort, then keep the last of each id.
            states.sort_by_key(|s| s.id);
            let mut out: Vec<EntityState> = Vec::with_capacity(states.len());
            for s in states {
                match out.last_mut() {
                    Some(last) if last.id == s.id => *last = s,
                    _ => out.push(s),
                }
            }
            states = out;
        }
        Self { states }
    }

    /// The states, sorted by id.
    pub fn as_slice(&self) -> &[EntityState] {
        &self.states
    }

    /// Entities held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    fn find(&self, id: u64) -> Result<usize, usize> {
        self.states.binary_search_by_key(&id, |s| s.id)
    }

    /// The state of `id`.
    pub fn get(&self, id: &u64) -> Option<&EntityState> {
        self.find(*id).ok().map(|i| &self.states[i])
    }

    /// Whether `id` is held.
    pub fn contains_key(&self, id: &u64) -> bool {
        self.find(*id).is_ok()
    }

    /// Sets the state of `id` (its `id` field is set to `id`); returns the previous one.
    pub fn insert(&mut self, id: u64, state: EntityState) -> Option<EntityState> {
        let state = EntityState { id, ..state };
        match self.find(id) {
            Ok(i) => Some(std::mem::replace(&mut self.states[i], state)),
            Err(i) => {
                self.states.insert(i, state);
                None
            }
        }
    }

    /// Removes `id`; returns its state.
    pub fn remove(&mut self, id: &u64) -> Option<EntityState> {
        self.find(*id).ok().map(|i| self.states.remove(i))
    }

    /// (id, state) pairs in id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&u64, &EntityState)> + ExactSizeIterator {
        self.states.iter().map(|s| (&s.id, s))
    }

    /// Ids in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> + ExactSizeIterator {
        self.states.iter().map(|s| &s.id)
    }

    /// States in id order.
    pub fn values(&self) -> std::slice::Iter<'_, EntityState> {
        self.states.iter()
    }

    /// (id, state) pairs with ids in `range`, in order.
    pub fn range(&self, range: std::ops::Range<u64>) -> impl Iterator<Item = (&u64, &EntityState)> {
        let from = self.find(range.start).unwrap_or_else(|i| i);
        let to = self.find(range.end).unwrap_or_else(|i| i).max(from);
        self.states[from..to].iter().map(|s| (&s.id, s))
    }
}

impl std::ops::Index<&u64> for View {
    type Output = EntityState;
    fn index(&self, id: &u64) -> &EntityState {
        self.get(id).unwrap_or_else(|| panic!("entity {id} is not in the view"))
    }
}

impl FromIterator<(u64, EntityState)> for View {
    fn from_iter<I: IntoIterator<Item = (u64, EntityState)>>(iter: I) -> Self {
        Self::from_states(iter.into_iter().map(|(id, s)| EntityState { id, ..s }).collect())
    }
}

impl<const N: usize> From<[(u64, EntityState); N]> for View {
    fn from(pairs: [(u64, EntityState); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a View {
    type Item = (&'a u64, &'a EntityState);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, EntityState>, fn(&'a EntityState) -> (&'a u64, &'a EntityState)>;
    fn into_iter(self) -> Self::IntoIter {
        self.states.iter().map(|s| (&s.id, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn st(id: u64, x: i32) -> EntityState {
        EntityState { id, position: [x, 0, 0], ..EntityState::default() }
    }

    proptest! {
        #[test]
        fn behaves_like_a_sorted_map(ops in proptest::collection::vec((0u64..40, -5i32..5, any::<bool>()), 0..200)) {
            let mut v = View::new();
            let mut m: BTreeMap<u64, EntityState> = BTreeMap::new();
            for (id, x, insert) in ops {
                if insert {
                    prop_assert_eq!(v.insert(id, st(id, x)), m.insert(id, st(id, x)));
                } else {
                    prop_assert_eq!(v.remove(&id), m.remove(&id));
                }
                prop_assert_eq!(v.len(), m.len());
            }
            prop_assert!(v.iter().map(|(k, s)| (*k, *s)).eq(m.iter().map(|(k, s)| (*k, *s))));
            prop_assert!(v.range(10..30).map(|(k, _)| *k).eq(m.range(10..30).map(|(k, _)| *k)));
            let rebuilt: View = m.iter().rev().map(|(k, s)| (*k, *s)).collect();
            prop_assert_eq!(rebuilt, v);
        }
    }

    #[test]
    fn the_last_state_of_a_repeated_id_wins() {
        let v: View = [(3, st(3, 1)), (1, st(1, 0)), (3, st(3, 2))].into();
        assert_eq!(v.len(), 2);
        assert_eq!(v[&3].position[0], 2);
        assert_eq!(v.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    }
}
