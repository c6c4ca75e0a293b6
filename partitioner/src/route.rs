//! Where a player belongs, from the store: the cell that owns it (a player who was in the
//! world), else the cell of its stored position, else the spawn point.

use pwn_store::keys::{CellKey, EntityRecord, player_key};
use pwn_store::{Store, StoreError};

/// What the store says about a player's place.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Place {
    /// A cell owns it.
    Cell(CellKey),
    /// Nobody owns it: it enters where it was, or at the spawn point.
    At(f32, f32),
}

/// Reads the player's owner record and stored position.
pub fn where_player_is(store: &Store, player: u64, spawn_xz: [f32; 2]) -> Result<Place, StoreError> {
    store.transact(|t| {
        if let Some(cell) = pwn_store::ownership::owner(t, player)? {
            return Ok(Place::Cell(cell));
        }
        let key = player_key(player);
        let at = t
            .get(&key)?
            .and_then(|v| EntityRecord::decode(&key, &v).ok())
            .map(|r| (r.position_m[0], r.position_m[2]))
            .filter(|(x, z)| x.is_finite() && z.is_finite());
        Ok(match at {
            Some((x, z)) => Place::At(x, z),
            None => Place::At(spawn_xz[0], spawn_xz[1]),
        })
    })
}
