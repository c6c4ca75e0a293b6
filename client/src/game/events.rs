//! What the client does with each reliable event (`[game-5]`, `[game-10]`, `[game-13]`):
//! projectiles announced and ended, zone switches and handoffs, inventory changes.

use super::*;

impl GameClient {
    pub(super) fn on_event(&mut self, e: GameEvent) {
        match &e {
            GameEvent::Fired { projectile, owner, tick, position, velocity } => {
                let id = EntityId(*projectile);
                if *owner == self.me.0 && self.predictor.as_ref().is_some_and(|p| p.has_projectile(id)) {
                    self.counters.projectiles_confirmed += 1;
                } else if self.remote_projectiles.len() < REMOTE_PROJECTILES_MAX {
                    self.remote_projectiles.insert(
                        *projectile,
                        RemoteProjectile {
                            owner: *owner,
                            tick: *tick,
                            position_m: dequantize_position(*position),
                            velocity_mps: dequantize_velocity(*velocity),
                        },
                    );
                }
                // Shots are drawn, not reported.
                return;
            }
            GameEvent::Hit { projectile, .. } => {
                self.remote_projectiles.remove(projectile);
            }
            // The first `Joined` places the player; another one means the gateway moved the
            // player to another zone ([game-10]).
            GameEvent::Joined { .. } if self.placed => self.zone_switched(),
            GameEvent::Joined { .. } => self.placed = true,
            // `[game-13]`: the prediction goes on; only the measurement starts.
            GameEvent::AuthorityMoved { tick } => {
                self.counters.handoffs += 1;
                // Measured only once inputs flow: before, no snapshot acknowledges any input.
                if self.input_ack > 0
                    && let Some(stalled) = self.handoff.authority_moved(*tick)
                {
                    self.record_handoff(stalled);
                }
                self.crossing_until_tick = tick.saturating_add(CROSSING_WINDOW_TICKS);
            }
            GameEvent::EditDone { request, outcome, .. } => self.edit_done(*request, *outcome),
            GameEvent::Inventory { items } => self.inventory = items.iter().map(|i| (i.id, i.kind)).collect(),
            GameEvent::ItemMoved { item, kind, to, .. } if *to == self.me.0 => {
                self.counters.items_received += 1;
                self.inventory.insert(*item, *kind);
            }
            GameEvent::ItemMoved { item, .. } => _ = self.inventory.remove(item),
            GameEvent::Chat { from, .. } => {
                self.counters.chat_received += 1;
                if *from != self.me.0 {
                    self.counters.chat_from_others += 1;
                }
            }
            _ => {}
        }
        self.push_event(e);
    }
}
