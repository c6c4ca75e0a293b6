//! Items of value in a zone: a player's inventory is read when it joins, players hand items to
//! each other nearby, and a player killed by another drops one item to the killer. Every move is
//! a store transaction (`pwn_store::items`) fenced by the zone's lease, run by one worker beside
//! the tick; the tick hears the outcome and tells the players. The zone keeps no copy of any
//! inventory: the store is the only truth, so a zone crash loses no committed move and cannot
//! replay one.
//!
//! Rules:
//! - `[zitem-1]` a give needs both players here, signed in through a gateway (they have
//!   accounts), alive, and within [`GIVE_RANGE_M`] of each other;
//! - `[zitem-2]` every move reads the zone's lease in the same transaction: a zone that lost its
//!   cell moves nothing;
//! - `[zitem-3]` operations wait in one bounded queue, in order, and a player has at most
//!   [`PENDING_PER_PLAYER_MAX`] of its own waiting; beyond either, the request is refused with a
//!   notice and counted;
//! - `[zitem-5]` in a partitioned world a move is fenced by both players' owners instead: each
//!   player's owner record must name the cell the zone holds it in, at that cell's lease
//!   epoch, so a gift between two zones' players commits only while both zones own them;
//! - `[zitem-6]` a gift to a player across a border (a ghost here, within reach) is fenced the
//!   same way, the receiver's side by its owner record and the lease its zone holds, so the
//!   move commits only while both zones own their players; the receiver hears of it from its own
//!   zone;
//! - `[zitem-4]` players hear of a move (`ItemMoved`, to both sides) only after it committed, and
//!   of their inventory (`Inventory`) from the same worker, in the same order as the moves, so
//!   a client applying events in order always ends with what the store holds.
//! - `[zitem-7]` neither is ever lost silently: a player whose `ItemMoved` or `Inventory` did not
//!   fit its event queue, or whose inventory load did not fit the worker's, has its inventory
//!   read and sent again as soon as there is room, so its client ends with what the store holds.

use crate::server::Persistence;
use pwn_proto::{GameEvent, ItemEntry};
use pwn_sim::EntityId;
use pwn_store::fence::check_lease;
use pwn_store::items::{ItemError, inventory, move_once};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Farthest two players may be apart to hand over an item.
pub const GIVE_RANGE_M: f32 = 6.0;
/// Item operations waiting for the store, all players together.
pub const QUEUE_MAX: usize = 1_024;
/// Operations one player may have waiting.
pub const PENDING_PER_PLAYER_MAX: u8 = 4;
/// Metric: item moves committed.
pub const MOVES_METRIC: &str = "pwn_zone_item_moves_total";
/// Metric: time an item operation's store transaction took (milliseconds).
pub const TXN_MS_METRIC: &str = "pwn_zone_item_txn_ms";
/// Metric: item requests refused (rules, store answer, or a full queue), by reason.
pub const REFUSED_METRIC: &str = "pwn_zone_item_refused_total";

const _: () = assert!(pwn_store::items::INVENTORY_ITEMS_MAX == pwn_proto::codec::INVENTORY_ITEMS_MAX);

/// Work for the store.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ItemOp {
    /// Read a player's inventory (it joined).
    Load {
        /// The player.
        player: EntityId,
    },
    /// Hand `item` from `from` to `to`.
    Give {
        /// The item.
        item: u64,
        /// The giver, who asked.
        from: EntityId,
        /// The receiver.
        to: EntityId,
    },
    /// `victim` died by `killer`'s hand: its first item goes to the killer.
    Loot {
        /// Who died.
        victim: EntityId,
        /// Who killed it.
        killer: EntityId,
    },
}

/// What the store said.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemOutcome {
    /// A player's inventory.
    Inventory {
        /// The player.
        player: EntityId,
        /// Its items.
        items: Vec<ItemEntry>,
    },
    /// An item changed owner (committed).
    Moved {
        /// The operation that moved it.
        op: ItemOp,
        /// The item.
        item: u64,
        /// Its kind.
        kind: u32,
    },
    /// Nothing moved; `why` is for the player who asked (if anyone did).
    Refused {
        /// The operation.
        op: ItemOp,
        /// Why, in words for a player.
        why: String,
    },
}

impl ItemOp {
    /// The player whose pending count this operation holds.
    fn requester(&self) -> EntityId {
        match *self {
            Self::Load { player } => player,
            Self::Give { from, .. } => from,
            Self::Loot { killer, .. } => killer,
        }
    }
}

/// In a partitioned world, what an item move is fenced by (`[zitem-5]`): the cell owning each
/// player and its lease epoch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OwnersFence {
    /// The giving (or dead) player's cell and epoch.
    pub from: (pwn_store::keys::CellKey, u64),
    /// The receiving player's cell and epoch.
    pub to: (pwn_store::keys::CellKey, u64),
}

fn check_owners(
    t: &mut dyn pwn_store::Transaction,
    f: &OwnersFence,
    from: EntityId,
    to: EntityId,
) -> Result<(), ItemError> {
    for (player, (cell, epoch)) in [(from, f.from), (to, f.to)] {
        match pwn_store::ownership::check_owner(t, player.0, cell, epoch) {
            Ok(()) => {}
            Err(pwn_store::ownership::OwnershipError::Store(e)) => return Err(e.into()),
            Err(pwn_store::ownership::OwnershipError::NotOwner { owner, .. }) => {
                return Err(pwn_store::StoreError::Fenced {
                    cell: cell.to_string(),
                    expected: epoch,
                    found: owner.map(|_| 0),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Runs one operation in its own transaction (`[zitem-2]`).
pub fn run_op(p: &Persistence, op: ItemOp) -> ItemOutcome {
    run_fenced(p, op, None)
}

/// A new item operation id: unique across the zone nodes of a world in practice (the process
/// and the time it started, then a counter).
fn next_op_id() -> u64 {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = (started as u64) ^ (u64::from(std::process::id()) << 40);
        std::sync::atomic::AtomicU64::new(seed.rotate_left(17))
    });
    next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runs one operation, fenced by the players' owners when `owners` is given (`[zitem-5]`),
/// else by the zone's lease (`[zitem-2]`).
pub fn run_fenced(p: &Persistence, op: ItemOp, owners: Option<OwnersFence>) -> ItemOutcome {
    let fenced_move = |item: Option<u64>, from: EntityId, to: EntityId| {
        // One id per move, chosen before the transaction: its retries are the same move
        // (`pwn_store::items` `[item-5]`).
        let op = next_op_id();
        p.store.transact(|t| {
            match &owners {
                Some(f) => check_owners(t, f, from, to)?,
                None => {
                    check_lease(t, p.cell, p.epoch)?;
                }
            }
            move_once(t, op, item, from.0, to.0).map(|m| m.map(|(item, r)| (item, r.kind)))
        })
    };
    let moved = match op {
        ItemOp::Load { player } => {
            return match p.store.transact(|t| inventory(t, player.0)) {
                Ok(items) => ItemOutcome::Inventory {
                    player,
                    items: items.into_iter().map(|(id, r)| ItemEntry { id, kind: r.kind }).collect(),
                },
                Err(e) => {
                    tracing::warn!(player = %player, error = %e, "inventory not read");
                    ItemOutcome::Refused { op, why: "your inventory could not be read".into() }
                }
            };
        }
        ItemOp::Give { item, from, to } => fenced_move(Some(item), from, to),
        ItemOp::Loot { victim, killer } => fenced_move(None, victim, killer),
    };
    match moved {
        Ok(Some((item, kind))) => ItemOutcome::Moved { op, item, kind },
        Ok(None) => ItemOutcome::Refused { op, why: "nothing to take".into() },
        Err(ItemError::Store(e)) => {
            tracing::warn!(?op, error = %e, "item move failed");
            ItemOutcome::Refused { op, why: "the world could not record that; try again".into() }
        }
        Err(e) => ItemOutcome::Refused { op, why: e.to_string() },
    }
}

/// The zone's side of items: the queue to the worker, the outcomes back, and each player's
/// pending count (`[zitem-3]`).
pub(crate) struct Items {
    ops: mpsc::Sender<(ItemOp, Option<OwnersFence>)>,
    outcomes: mpsc::Receiver<ItemOutcome>,
    pending: HashMap<EntityId, u8>,
    /// Players whose inventory must be sent again (`[zitem-7]`).
    resync: std::collections::BTreeSet<EntityId>,
}

/// Players waiting for their inventory to be sent again; beyond this the oldest requests wait
/// for room (a player's own later load sends it anyway).
pub const RESYNC_MAX: usize = 16_384;

impl Items {
    /// Starts the worker for `p`.
    pub(crate) fn start(p: Persistence) -> Self {
        let (ops, mut rx) = mpsc::channel::<(ItemOp, Option<OwnersFence>)>(QUEUE_MAX);
        let (done, outcomes) = mpsc::channel::<ItemOutcome>(QUEUE_MAX);
        tokio::spawn(async move {
            while let Some((op, owners)) = rx.recv().await {
                let p = p.clone();
                let started = std::time::Instant::now();
                let Ok(outcome) = tokio::task::spawn_blocking(move || run_fenced(&p, op, owners)).await else { return };
                metrics::histogram!(TXN_MS_METRIC).record(started.elapsed().as_secs_f64() * 1e3);
                if done.send(outcome).await.is_err() {
                    return;
                }
            }
        });
        Self { ops, outcomes, pending: HashMap::new(), resync: std::collections::BTreeSet::new() }
    }

    /// `player`'s inventory is sent again as soon as the worker has room (`[zitem-7]`): an
    /// inventory event or an item move it was not told of (its queue was full), or a load the
    /// worker had no room for.
    pub(crate) fn resync(&mut self, player: EntityId) {
        if self.resync.len() < RESYNC_MAX {
            self.resync.insert(player);
        }
    }

    /// Loads the inventories waiting to be sent again, as far as the worker has room, for
    /// players `ready` says can take them now (`Some(false)`: not yet; `None`: gone, forgotten).
    pub(crate) fn retry_resyncs(&mut self, ready: impl Fn(EntityId) -> Option<bool>) {
        let waiting: Vec<EntityId> = self.resync.iter().copied().collect();
        for player in waiting {
            match ready(player) {
                None => {
                    self.resync.remove(&player);
                }
                Some(false) => {}
                Some(true) => {
                    if self.submit(ItemOp::Load { player }).is_err() {
                        break;
                    }
                    self.resync.remove(&player);
                }
            }
        }
    }

    /// Queues `op`; `Err` with words for the player when it is refused for load.
    pub(crate) fn submit(&mut self, op: ItemOp) -> Result<(), &'static str> {
        self.submit_fenced(op, None)
    }

    /// Queues `op` fenced by the players' owners (`[zitem-5]`).
    pub(crate) fn submit_fenced(&mut self, op: ItemOp, owners: Option<OwnersFence>) -> Result<(), &'static str> {
        let pending = self.pending.entry(op.requester()).or_default();
        if *pending >= PENDING_PER_PLAYER_MAX {
            metrics::counter!(REFUSED_METRIC, "reason" => "pending").increment(1);
            return Err("too many item requests at once");
        }
        if self.ops.try_send((op, owners)).is_err() {
            metrics::counter!(REFUSED_METRIC, "reason" => "queue_full").increment(1);
            return Err("the world is busy; try again");
        }
        *pending += 1;
        Ok(())
    }

    /// Outcomes ready now, as events for their players (`[zitem-4]`).
    pub(crate) fn drain(&mut self, out: &mut Vec<(EntityId, GameEvent)>) {
        while let Ok(outcome) = self.outcomes.try_recv() {
            let op = match &outcome {
                ItemOutcome::Inventory { player, .. } => ItemOp::Load { player: *player },
                ItemOutcome::Moved { op, .. } | ItemOutcome::Refused { op, .. } => *op,
            };
            if let Some(n) = self.pending.get_mut(&op.requester()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.pending.remove(&op.requester());
                }
            }
            events_of(outcome, out);
        }
    }
}

/// The events telling players of an outcome.
pub fn events_of(outcome: ItemOutcome, out: &mut Vec<(EntityId, GameEvent)>) {
    match outcome {
        ItemOutcome::Inventory { player, items } => out.push((player, GameEvent::Inventory { items })),
        ItemOutcome::Moved { op, item, kind } => {
            metrics::counter!(MOVES_METRIC).increment(1);
            let (from, to) = match op {
                ItemOp::Give { from, to, .. } => (from, to),
                ItemOp::Loot { victim, killer } => (victim, killer),
                ItemOp::Load { .. } => return,
            };
            let moved = GameEvent::ItemMoved { item, kind, from: from.0, to: to.0 };
            out.push((from, moved.clone()));
            out.push((to, moved));
        }
        ItemOutcome::Refused { op: ItemOp::Give { from, .. }, why } => {
            metrics::counter!(REFUSED_METRIC, "reason" => "store").increment(1);
            out.push((from, GameEvent::Notice { text: format!("cannot give: {why}") }));
        }
        // A victim with nothing to drop, or an inventory that could not be read (logged).
        ItemOutcome::Refused { .. } => {}
    }
}

/// Checks a give against `[zitem-1]`; `persistent` says who has an account.
pub fn check_give(
    sim: &pwn_sim::Sim,
    has_account: impl Fn(EntityId) -> bool,
    from: EntityId,
    to: EntityId,
) -> Result<(), &'static str> {
    if from == to {
        return Err("you already have it");
    }
    let (Some(a), Some(b)) = (sim.character(from), sim.character(to)) else {
        return Err("nobody by that id here");
    };
    if !has_account(from) || !has_account(to) {
        return Err("items need an account on both sides");
    }
    if !a.alive() || !b.alive() {
        return Err("the dead cannot trade");
    }
    if a.position_m.distance(b.position_m) > GIVE_RANGE_M {
        return Err("too far away");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// `[zitem-7]`: a player marked for a resync is sent its whole inventory once its queue has
    /// room, and forgotten once it is gone.
    #[tokio::test]
    async fn zitem_7_an_inventory_that_did_not_fit_is_sent_again_when_there_is_room() {
        let store = pwn_store::Store::new(Arc::new(pwn_store::MemoryBackend::new()));
        let cell = pwn_store::keys::CellKey::ROOT;
        let epoch = store.transact(|t| pwn_store::fence::grant_lease(t, cell, 1)).unwrap().epoch;
        let player = EntityId(5);
        for kind in [1, 2, 3] {
            store.transact(|t| pwn_store::items::create(t, player.0, kind)).unwrap();
        }
        let mut items = Items::start(Persistence { store, cell, epoch, interval_ticks: 30 });
        items.resync(player);
        items.resync(EntityId(6));
        // Not yet: its queue is still full. The other player left: forgotten.
        items.retry_resyncs(|p| if p == player { Some(false) } else { None });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut out = Vec::new();
        items.drain(&mut out);
        assert!(out.is_empty(), "{out:?}");
        items.retry_resyncs(|_| Some(true));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while out.is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the inventory was never sent again");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            items.drain(&mut out);
        }
        assert!(
            matches!(&out[..], [(p, GameEvent::Inventory { items })] if *p == player && items.len() == 3),
            "{out:?}"
        );
        // Sent once: nothing more waits.
        items.retry_resyncs(|_| Some(true));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        out.clear();
        items.drain(&mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
