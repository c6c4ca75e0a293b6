//! The persistence writer beside the tick: the newest checkpoint handed over (older ones not
//! yet written are replaced: a slow store never delays the tick) and every departing player
//! (each written), on blocking threads, until the zone stops.

use crate::persist::{CellCheckpoint, PlayerState, SimBounds, checkpoint_cell, save_owned_players, save_players};
use pwn_store::keys::CellKey;
use pwn_store::{Store, StoreError};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// A checkpoint: when its state was taken, and each cell's share.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoint {
    pub(crate) taken: Instant,
    pub(crate) cells: Vec<CellCheckpoint>,
}

/// A player leaving, and the cell (with its epoch) whose lease fences its save.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Leaving {
    pub(crate) state: PlayerState,
    pub(crate) cell: CellKey,
    pub(crate) epoch: u64,
    /// Whether the cell must still own it (a partitioned world, `[persist-5]`).
    pub(crate) owners_checked: bool,
}

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
    loop {
        let store = store.clone();
        let written: Result<Result<(), StoreError>, tokio::task::JoinError> = tokio::select! {
            changed = states.changed(), if checkpoints_open => {
                if changed.is_err() {
                    checkpoints_open = false;
                    continue;
                }
                let Some(cp) = states.borrow_and_update().clone() else { continue };
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
