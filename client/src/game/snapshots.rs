//! What the client does with each snapshot (`[game-3]`, `[game-7]`, `[game-8]`, `[game-11]`,
//! `[game-12]`, `[game-13]`, `[game-14]`): the view applied (or, without prediction, only the
//! header of two in three), inputs acknowledged and missed, the zone's backlog paced, and the
//! player's own state reconciled with the prediction, or prediction started.

use super::*;

impl GameClient {
    pub(super) fn on_snapshot(&mut self, arrival_s: f64, s: &Snapshot) {
        if self.blind && s.tick < self.acked_tick + BLIND_DECODE_EVERY_TICKS {
            // [game-14]: the header only, in order.
            if s.tick <= self.last_snapshot_tick {
                self.counters.snapshots_dropped += 1;
                return;
            }
            self.counters.snapshots += 1;
            self.on_snapshot_header(arrival_s, s);
            return;
        }
        let (_, updates) = match self.views.apply_counted(s) {
            Ok(applied) => applied,
            Err(ApplyError::Stale(_) | ApplyError::UnknownBaseline(_) | ApplyError::Violation(_)) => {
                self.counters.snapshots_dropped += 1;
                return;
            }
        };
        self.counters.snapshots += 1;
        self.snapshots_since_join += 1;
        self.counters.entity_updates += updates.all as u64;
        self.counters.object_updates += updates.objects as u64;
        self.counters.update_bytes += s.updates.len() as u64;
        if let Some(shared) = self.views.shared(s.tick) {
            self.interp.push_shared(s.tick, arrival_s, shared);
        }
        let Some((_, view)) = self.views.latest() else { return };
        self.acked_tick = s.tick;
        let own = view.get(&self.me.0).copied();
        // Back in its own view after being out of it: dead until now, it has respawned.
        let was_in_view = std::mem::replace(&mut self.own_in_view, own.is_some());
        let respawned = own.is_some() && !was_in_view;
        if let Some(p) = self.predictor.as_mut() {
            // `[game-8]`, `[game-12]`: the predicted world follows the server's, carried forward
            // to the tick being predicted.
            let ahead = self.next_seq.saturating_sub(1).saturating_sub(s.input_ack) as f32 * self.tick_s as f32;
            self.mirror.follow(p, view, self.me, ahead);
        }
        self.on_snapshot_header(arrival_s, s);
        self.on_own_state(s, own, respawned);
    }

    /// What a snapshot's header says (every snapshot, decoded or not): inputs missed and
    /// acknowledged, the handoff meter, the zone's backlog of our inputs.
    fn on_snapshot_header(&mut self, arrival_s: f64, s: &Snapshot) {
        // Two consecutive ticks that applied the same input while newer ones had been sent: the
        // zone had nothing for the second, an input missed its tick ([game-7]).
        if self.driving()
            && s.tick == self.last_snapshot_tick + 1
            && s.input_ack == self.input_ack
            && s.input_ack > 0
            && self.next_seq > s.input_ack + 1
        {
            self.counters.inputs_missed += 1;
            self.pace.missed(self.now_s);
        }
        if let Some(stalled) = self.handoff.snapshot(s.tick, s.input_ack) {
            self.record_handoff(stalled);
        }
        self.last_snapshot_tick = s.tick;
        if s.input_ack > self.input_ack {
            self.input_ack = s.input_ack;
            while let Some((seq, sent_s)) = self.sent_at.front().copied() {
                if seq > s.input_ack {
                    break;
                }
                self.sent_at.pop_front();
                self.counters.input_ack_ticks.record((arrival_s - sent_s) / self.tick_s);
                self.pace.acknowledged(arrival_s - sent_s);
            }
        }
        self.observe_backlog(arrival_s, s.input_backlog);
    }

    /// The player's own character in a decoded snapshot: respawns, reconciliation, the start
    /// of prediction.
    fn on_own_state(&mut self, s: &Snapshot, own: Option<EntityState>, respawned: bool) {
        let Some(state) = own else { return };
        if respawned && self.driving() {
            // Like a join ([game-3]): predict again once the character rests where it came back.
            self.counters.respawns += 1;
            self.predictor = None;
            self.blind = false;
            self.holding_still = true;
            return;
        }
        match self.predictor.as_mut() {
            Some(p) => match p.reconcile(s.tick, s.input_ack, &state) {
                Reconciled::NotCompared => {}
                Reconciled::Confirmed => {
                    self.counters.confirmations += 1;
                    self.counters.prediction_error_m.record(0.0);
                    match s.tick <= self.crossing_until_tick {
                        true => self.counters.prediction_error_crossing_m.record(0.0),
                        false => self.counters.prediction_error_elsewhere_m.record(0.0),
                    }
                }
                Reconciled::Corrected { error_m } => {
                    let here = dequantize_position(state.position);
                    let nearest_m = self
                        .views
                        .latest()
                        .map(|(_, v)| {
                            v.values()
                                .filter(|e| e.id != self.me.0)
                                .map(|e| dequantize_position(e.position).distance(here))
                                .fold(f32::MAX, f32::min)
                        })
                        .unwrap_or(f32::MAX);
                    tracing::debug!(
                        player = %self.me,
                        error_m,
                        nearest_m,
                        input_ack = s.input_ack,
                        tick = s.tick,
                        server = ?dequantize_position(state.position),
                        "prediction corrected"
                    );
                    self.counters.corrections += 1;
                    self.counters.prediction_error_m.record(f64::from(error_m));
                    match s.tick <= self.crossing_until_tick {
                        true => self.counters.prediction_error_crossing_m.record(f64::from(error_m)),
                        false => self.counters.prediction_error_elsewhere_m.record(f64::from(error_m)),
                    }
                }
            },
            None if self.blind => {}
            None if state.velocity != [0, 0, 0] || self.snapshots_since_join < u64::from(PACE_WINDOW_SNAPSHOTS) => {}
            None => self.start_predicting(s.tick, &state),
        }
    }

    pub(super) fn record_handoff(&mut self, stalled: u32) {
        tracing::debug!(player = %self.me, stalled, "handoff measured");
        self.counters.handoff_ticks.push_back(stalled);
        if self.counters.handoff_ticks.len() > crate::counters::HANDOFFS_KEPT_MAX {
            self.counters.handoff_ticks.pop_front();
        }
    }

    pub(super) fn jitter_ticks(&self) -> f64 {
        if self.blind {
            // [game-14]: arrivals read once a tick measure the reader, not the link.
            return 0.0;
        }
        (self.interp.delay_ticks() - 1.0) / 2.0
    }

    /// `[game-7]`: one pacing decision per window of snapshots.
    fn observe_backlog(&mut self, arrival_s: f64, backlog: u8) {
        if self.driving() && self.pace.observe(arrival_s, backlog, self.jitter_ticks()) {
            self.counters.pacing_steps += 1;
        }
    }
}
