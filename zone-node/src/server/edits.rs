//! The tick thread's side of world-object edits (`crate::objects`): each player's rate and
//! pending count (`[zobj-2]`), the bounded queue to the worker that commits edits, and the
//! outcomes coming back, applied to the simulation and answered (`[zobj-4]`).

use crate::objects::{EDIT_BURST, EDITS_PER_S, PENDING_PER_PLAYER_MAX, QUEUE_MAX, Validated};
use pwn_proto::EditOutcome;
use pwn_sim::EntityId;
use pwn_store::objects::{Bounds, EditDone};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// An edit's outcome from the worker.
pub(crate) type Finished = (Validated, Result<EditDone, EditOutcome>);

/// Rate, pending counts, and the worker's queues.
pub(crate) struct Edits {
    jobs: mpsc::Sender<Validated>,
    finished: mpsc::Receiver<Finished>,
    pending: HashMap<EntityId, u8>,
    /// Edit tokens per player (refilled every tick, `[zobj-2]`); players without an entry
    /// have a full bucket.
    tokens: HashMap<EntityId, f32>,
}

impl Edits {
    /// Starts the worker committing to `store`.
    pub(crate) fn start(store: pwn_store::Store, bounds: Bounds) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Validated>(QUEUE_MAX);
        let (done, finished) = mpsc::channel::<Finished>(QUEUE_MAX);
        tokio::spawn(async move {
            while let Some(v) = rx.recv().await {
                let store = store.clone();
                let started = std::time::Instant::now();
                let kept = v.clone();
                // A commit that panicked is answered as failed: what the edit holds is released
                // and the worker goes on.
                let f = tokio::task::spawn_blocking(move || {
                    let outcome = crate::objects::commit(&store, &v, &bounds);
                    (v, outcome)
                })
                .await
                .unwrap_or((kept, Err(EditOutcome::StoreFailed)));
                metrics::histogram!(crate::objects::TXN_MS_METRIC).record(started.elapsed().as_secs_f64() * 1e3);
                if done.send(f).await.is_err() {
                    return;
                }
            }
        });
        Self { jobs, finished, pending: HashMap::new(), tokens: HashMap::new() }
    }

    /// Refills every player's tokens by one tick's worth (`dt_s`); full buckets are forgotten.
    pub(crate) fn refill(&mut self, dt_s: f32) {
        self.tokens.retain(|_, t| {
            *t += EDITS_PER_S * dt_s;
            *t < EDIT_BURST
        });
    }

    /// Takes one of `player`'s tokens (`[zobj-2]`), before anything is checked: refused
    /// requests cost as much as accepted ones, or probing (and the tick's time checking) would
    /// be free.
    pub(crate) fn spend(&mut self, player: EntityId) -> bool {
        let tokens = self.tokens.entry(player).or_insert(EDIT_BURST);
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    /// Whether `player` may have one more edit waiting (`[zobj-2]`).
    pub(crate) fn has_room(&self, player: EntityId) -> bool {
        self.pending.get(&player).is_none_or(|n| *n < PENDING_PER_PLAYER_MAX)
    }

    /// Queues `v` for the store (`[zobj-2]`); `Err` gives it back when the queue is full.
    pub(crate) fn submit(&mut self, v: Validated) -> Result<(), Box<Validated>> {
        let player = v.player;
        if let Err(e) = self.jobs.try_send(v) {
            return Err(Box::new(e.into_inner()));
        }
        *self.pending.entry(player).or_default() += 1;
        Ok(())
    }

    /// Outcomes ready now.
    pub(crate) fn drain(&mut self) -> Vec<Finished> {
        let mut out = Vec::new();
        while let Ok(f) = self.finished.try_recv() {
            if let Some(n) = self.pending.get_mut(&f.0.player) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.pending.remove(&f.0.player);
                }
            }
            out.push(f);
        }
        out
    }
}

/// What a zone of a partitioned world serves: the leaf holding a point, if its lease is held
/// and its entities are loaded.
struct MeshServing<'a> {
    mesh: &'a super::mesh_tick::MeshTick,
}

impl crate::objects::Serving for MeshServing<'_> {
    fn cell_at(&self, x: f32, z: f32) -> Option<(pwn_store::keys::CellKey, u64)> {
        let cell = self.mesh.territory.tree().leaf_at(x, z);
        if !self.mesh.loaded.contains(&cell) {
            return None;
        }
        self.mesh.serving(cell).map(|e| (cell, e.0))
    }

    fn objects_in(&self, sim: &pwn_sim::Sim, cell: pwn_store::keys::CellKey) -> usize {
        let tree = self.mesh.territory.tree();
        sim.objects().filter(|o| tree.leaf_at(o.position_m.x, o.position_m.z) == cell).count()
    }
}

/// The cells this zone serves, as the objects' checks see them.
fn serving_of<'a>(
    mesh: &'a Option<super::mesh_tick::MeshTick>,
    single: Option<(pwn_store::keys::CellKey, u64)>,
) -> Option<Box<dyn crate::objects::Serving + 'a>> {
    match (mesh, single) {
        (Some(mesh), _) => Some(Box::new(MeshServing { mesh })),
        (None, Some(cell)) => Some(Box::new(crate::objects::WholeWorld { cell })),
        (None, None) => None,
    }
}

impl super::tick::TickLoop {
    /// A player's edit: rate first, then checked, then queued for the store, or answered with
    /// the refusal (`[zobj-1]`, `[zobj-2]`).
    pub(super) fn on_edit(&mut self, player: EntityId, req: pwn_proto::EditObject) {
        let object = req.op.object().unwrap_or(0);
        let (Some(edits), Some(serving)) = (&mut self.edits, serving_of(&self.mesh, self.single)) else {
            self.answer_edit(player, req.request, object, EditOutcome::Invalid);
            return;
        };
        if !edits.spend(player) {
            self.answer_edit(player, req.request, object, EditOutcome::RateLimited);
            return;
        }
        if !edits.has_room(player) {
            self.answer_edit(player, req.request, object, EditOutcome::Busy);
            return;
        }
        let v = match self.zone.check_edit(serving.as_ref(), player, &req) {
            Ok(v) => v,
            Err(why) => {
                self.answer_edit(player, req.request, object, why);
                return;
            }
        };
        if let Err(v) = edits.submit(v) {
            // Not queued: it holds nothing any more.
            self.zone.finish_edit(serving.as_ref(), &v, &Err(EditOutcome::Busy));
            self.answer_edit(player, req.request, object, EditOutcome::Busy);
        }
    }

    /// Applies committed edits and answers every finished one (`[zobj-4]`).
    pub(super) fn finish_edits(&mut self) {
        let Some(edits) = &mut self.edits else { return };
        edits.refill(self.clock.period.as_secs_f32());
        let finished = edits.drain();
        if finished.is_empty() {
            return;
        }
        let Some(serving) = serving_of(&self.mesh, self.single) else { return };
        let mut answers = Vec::with_capacity(finished.len());
        let mut edited = Vec::new();
        for (v, outcome) in finished {
            // Where the object was, for neighbours that held it (`[zobj-6]`).
            let was_at = v.op.object().and_then(|id| self.zone.sim().object(EntityId(id))).map(|o| o.position_m);
            let object = self.zone.finish_edit(serving.as_ref(), &v, &outcome);
            if outcome.is_ok() {
                let at = was_at.or_else(|| self.zone.sim().object(EntityId(object)).map(|o| o.position_m));
                if let Some(at) = at {
                    edited.push((EntityId(object), at));
                }
            }
            let outcome = match outcome {
                Ok(_) => {
                    metrics::counter!(crate::objects::EDITS_METRIC).increment(1);
                    EditOutcome::Committed
                }
                Err(why) => why,
            };
            answers.push((v.player, v.request, object, outcome));
        }
        drop(serving);
        if !edited.is_empty() && self.mesh.is_some() {
            self.send_object_ghosts(false, Some(&edited));
        }
        for (player, request, object, outcome) in answers {
            self.answer_edit(player, request, object, outcome);
        }
    }

    fn answer_edit(&self, player: EntityId, request: u64, object: u64, outcome: EditOutcome) {
        if outcome != EditOutcome::Committed {
            metrics::counter!(crate::objects::REFUSED_METRIC, "reason" => format!("{outcome:?}")).increment(1);
        }
        let Some((_, events, _)) = self.players.get(&player) else { return };
        if events.try_send(pwn_proto::GameEvent::EditDone { request, object, outcome }).is_err() {
            metrics::counter!(super::metric::EVENTS_DROPPED).increment(1);
        }
    }
}
