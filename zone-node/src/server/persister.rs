//! The persistence writer beside the tick: the newest checkpoint handed over (older ones not
//! yet written are replaced: a slow store never delays the tick) and every departing player
//! (each written), on blocking threads, until the zone stops.
//!
//! `[persist-7]` the two arrive on separate channels and are taken in no fixed order, so each
//! carries the tick it was taken at: a checkpoint taken before a player left never writes that
//! player after its departure was saved (it would move the stored player back in time).

use crate::persist::{CellCheckpoint, PlayerState, SimBounds, checkpoint_cell, save_owned_players, save_players};
use pwn_store::keys::CellKey;
use pwn_store::{Store, StoreError};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// A checkpoint: when its state was taken, and each cell's share.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoint {
    pub(crate) taken: Instant,
    /// The tick its state is of.
    pub(crate) tick: u64,
    pub(crate) cells: Vec<CellCheckpoint>,
}

/// A player leaving, and the cell (with its epoch) whose lease fences its save.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Leaving {
    pub(crate) state: PlayerState,
    /// The tick it left at.
    pub(crate) tick: u64,
    pub(crate) cell: CellKey,
    pub(crate) epoch: u64,
    /// Whether the cell must still own it (a partitioned world, `[persist-5]`).
    pub(crate) owners_checked: bool,
}

/// Departures remembered until a newer checkpoint is written (`[persist-7]`); the tick sends at
/// most `DEPARTURES_QUEUE_MAX` between two checkpoints.
const LEFT_REMEMBERED_MAX: usize = 65_536;

/// Writes checkpoints and departures until both channels close. A single-cell zone that finds
/// its lease gone stops writing; a zone of a partitioned world loses cells one by one and goes
/// on with the others (every write is fenced anyway).
pub(crate) async fn persist_loop(
    store: Store,
    bounds: SimBounds,
    mut states: watch::Receiver<Option<Checkpoint>>,
    mut departures: mpsc::Receiver<Leaving>,
) {
    let mut checkpoints_open = true;
    // `[persist-7]`: the tick each recently departed player's save was taken at.
    let mut left_at: std::collections::HashMap<pwn_sim::EntityId, u64> = std::collections::HashMap::new();
    loop {
        let store = store.clone();
        let written: Result<Result<(), StoreError>, tokio::task::JoinError> = tokio::select! {
            changed = states.changed(), if checkpoints_open => {
                if changed.is_err() {
                    checkpoints_open = false;
                    continue;
                }
                let Some(mut cp) = states.borrow_and_update().clone() else { continue };
                for c in &mut cp.cells {
                    c.players.retain(|p| left_at.get(&p.id).is_none_or(|t| *t < cp.tick));
                }
                // Every later checkpoint is newer than these departures.
                left_at.retain(|_, t| *t >= cp.tick);
                // Each cell on its own: one cell whose lease moved does not hold up the others.
                let written = tokio::task::spawn_blocking(move || {
                    let (mut n, mut first_error) = (0, None);
                    for c in &cp.cells {
                        match checkpoint_cell(&store, c, &bounds) {
                            Ok(_) => n += c.crates.len() + c.players.len(),
                            Err(e) => first_error = first_error.or(Some((e, c.owners_checked))),
                        }
                    }
                    match first_error {
                        None => Ok((n, cp.cells.len())),
                        Some((e, partitioned)) => Err((e, partitioned)),
                    }
                })
                .await;
                if let Ok(Ok((n, cells))) = &written {
                    metrics::counter!(super::metric::CHECKPOINTS).increment(1);
                    metrics::histogram!(super::metric::CHECKPOINT_LAG_MS).record(cp.taken.elapsed().as_secs_f64() * 1e3);
                    tracing::info!(cells, entities = n, "checkpoint written");
                }
                match written {
                    Ok(Err((StoreError::Fenced { cell, expected, found }, false))) => {
                        tracing::error!(%cell, expected, ?found, "lease lost: this zone no longer writes its cell");
                        return;
                    }
                    other => other.map(|r| r.map(|_| ()).map_err(|(e, _)| e)),
                }
            }
            departure = departures.recv() => {
                let Some(l) = departure else {
                    if checkpoints_open { continue } else { return }
                };
                if left_at.len() < LEFT_REMEMBERED_MAX {
                    left_at.insert(l.state.id, l.tick);
                }
                let written = tokio::task::spawn_blocking(move || match l.owners_checked {
                    true => save_owned_players(&store, l.cell, l.epoch, &[l.state]),
                    false => save_players(&store, l.cell, l.epoch, &[l.state]),
                })
                .await;
                if let Ok(Ok(())) = &written {
                    tracing::info!(player = l.state.id.0, "player saved on leaving");
                }
                written
            }
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(StoreError::Fenced { cell, expected, found })) => {
                tracing::warn!(%cell, expected, ?found, "a lease moved: this zone no longer writes that cell");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "write failed; the next checkpoint will retry"),
            Err(e) => tracing::error!(error = %e, "persistence task failed"),
        }
        if !checkpoints_open && departures.is_closed() && departures.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwn_sim::EntityId;
    use std::sync::Arc;

    /// `[persist-7]`: a departure saved first, then a checkpoint taken before it: the stored
    /// player stays where it left.
    #[tokio::test]
    async fn persist_7_an_older_checkpoint_never_moves_a_departed_player_back() {
        let store = Store::new(Arc::new(pwn_store::MemoryBackend::new()));
        let cell = CellKey::ROOT;
        let epoch = store.transact(|t| pwn_store::fence::grant_lease(t, cell, 1)).unwrap().epoch;
        let bounds = SimBounds { origin_m: [-100.0, -100.0], size_m: [200.0, 200.0] };
        let (cp_tx, cp_rx) = watch::channel(None);
        let (leave_tx, leave_rx) = mpsc::channel(8);
        let writer = tokio::spawn(persist_loop(store.clone(), bounds, cp_rx, leave_rx));
        let id = EntityId(7);
        let at = |x: f32| PlayerState { id, position: glam::Vec3::new(x, 1.0, 0.0), yaw_rad: 0.0, health: 100 };
        leave_tx.send(Leaving { state: at(50.0), tick: 100, cell, epoch, owners_checked: false }).await.unwrap();
        while crate::persist::load_player(&store, id).unwrap().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A checkpoint of tick 90 (the player still at x = 10), written after the departure.
        let crate_state = crate::persist::CrateState {
            id: EntityId::world_entity(0),
            position: glam::Vec3::new(1.0, 0.5, 1.0),
            rotation: glam::Quat::IDENTITY,
            linvel: glam::Vec3::ZERO,
            angvel: glam::Vec3::ZERO,
        };
        let cells = vec![CellCheckpoint {
            cell,
            epoch,
            crates: vec![crate_state],
            objects: Vec::new(),
            players: vec![at(10.0)],
            owners_checked: false,
            rect_m: None,
        }];
        cp_tx.send(Some(Checkpoint { taken: Instant::now(), tick: 90, cells: cells.clone() })).unwrap();
        let key = pwn_store::keys::entity_key(crate_state.id.0);
        while store.transact(|t| t.get(&key)).unwrap().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(crate::persist::load_player(&store, id).unwrap().unwrap().position.x, 50.0);
        // A newer checkpoint (it came back and moved on) writes it again.
        let mut newer = cells;
        newer[0].players = vec![at(70.0)];
        cp_tx.send(Some(Checkpoint { taken: Instant::now(), tick: 110, cells: newer })).unwrap();
        while crate::persist::load_player(&store, id).unwrap().unwrap().position.x != 70.0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop((cp_tx, leave_tx));
        writer.await.unwrap();
    }
}
