//! The builders scenario (`Scenario::Builders`): half the bots build, half ride platforms.
//!
//! A builder stands where it landed and, every `BUILD_PERIOD_S`, takes the next step of a cycle
//! on an object of its own: place one (its kind from the bot's index, among the world's kinds)
//! `BUILD_AHEAD_M` ahead, change its state (when its kind has more than one), move it a metre
//! aside, remove it; a refused step starts the cycle over. A rider walks to the first waypoint of
//! a platform picked by its index (or a spot beside it) and waits there: lifts carry it up and
//! back, ferries push it along. In a world without object kinds builders only stand, and without platforms
//! riders only stand.

use glam::Vec3;
use pwn_client::Frame;
use pwn_proto::{EditOp, EditOutcome, GameEvent};
use pwn_sim::WorldDesc;
use pwn_sim::quantize::{quantize_position, quantize_yaw};

/// Seconds between a builder's edits.
pub const BUILD_PERIOD_S: f64 = 1.0;
/// How far ahead of itself a builder places its object.
pub const BUILD_AHEAD_M: f32 = 3.0;

/// Whether bot `index` of the builders scenario builds (the others ride).
pub fn builds(index: usize) -> bool {
    index.is_multiple_of(2)
}

/// One builder's cycle.
#[derive(Clone, Debug)]
pub struct Builder {
    kind: u16,
    states: u16,
    object: Option<u64>,
    step: u8,
    waiting: Option<u64>,
    next_s: f64,
}

impl Builder {
    /// Bot `index`'s builder in `world` (`None` when the world declares no object kinds).
    pub fn new(index: usize, world: &WorldDesc) -> Option<Self> {
        let n = world.object_kinds.len();
        if n == 0 {
            return None;
        }
        let kind = (index / 2) % n;
        Some(Self {
            kind: kind as u16,
            states: world.object_kinds[kind].states,
            object: None,
            step: 0,
            waiting: None,
            next_s: BUILD_PERIOD_S,
        })
    }

    /// Reads the answers in `frame`; returns the next edit when one is due at `played_s`.
    pub fn next(&mut self, frame: &Frame, played_s: f64) -> Option<EditOp> {
        for e in &frame.events {
            if let GameEvent::EditDone { request, object, outcome } = e
                && self.waiting == Some(*request)
            {
                self.waiting = None;
                match outcome {
                    EditOutcome::Committed => {
                        self.object = (self.step < 3).then_some(*object);
                        self.step = (self.step + 1) % 4;
                    }
                    _ => {
                        // Start over; an object left behind is removed first.
                        self.step = if self.object.is_some() { 3 } else { 0 };
                    }
                }
            }
        }
        if self.waiting.is_some() || played_s < self.next_s {
            return None;
        }
        self.next_s = played_s + BUILD_PERIOD_S;
        let me = frame.me.as_ref()?;
        let ahead = Vec3::new(me.yaw_rad.sin(), 0.0, me.yaw_rad.cos()) * BUILD_AHEAD_M;
        let at = me.position_m + ahead;
        let yaw = quantize_yaw(me.yaw_rad);
        if self.step == 1 && self.states <= 1 {
            // A kind with one state: nothing to change, move it instead.
            self.step = 2;
        }
        match (self.step, self.object) {
            (0, _) => Some(EditOp::Place { kind: self.kind, position: quantize_position(at), yaw, state: 0 }),
            (1, Some(object)) => Some(EditOp::SetState { object, state: 1 }),
            (2, Some(object)) => {
                let aside = Vec3::new(ahead.z, 0.0, -ahead.x).normalize_or_zero();
                Some(EditOp::Move { object, position: quantize_position(at + aside), yaw })
            }
            (3, Some(object)) => Some(EditOp::Remove { object }),
            _ => {
                self.step = 0;
                None
            }
        }
    }

    /// The request number the edit just sent got.
    pub fn sent(&mut self, request: u64) {
        self.waiting = Some(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwn_client::Drawn;

    fn frame(events: Vec<GameEvent>) -> Frame {
        let me = Drawn { id: 1, position_m: Vec3::new(0.0, 1.0, 0.0), yaw_rad: 0.0, health: 100 };
        Frame { me: Some(me), events, ..Frame::default() }
    }

    fn done(request: u64, object: u64, outcome: EditOutcome) -> Vec<GameEvent> {
        vec![GameEvent::EditDone { request, object, outcome }]
    }

    #[test]
    fn a_builder_places_changes_moves_and_removes_and_starts_over_after_a_refusal() {
        let world = WorldDesc::from_toml(include_str!("../../worlds/workshop.toml")).unwrap();
        // Bot 2 builds kind 1, the door (two states).
        let mut b = Builder::new(2, &world).unwrap();
        let mut t = 0.0;
        let mut events = Vec::new();
        let mut ops = Vec::new();
        for request in 1..=6u64 {
            t += BUILD_PERIOD_S;
            let op = b.next(&frame(std::mem::take(&mut events)), t).expect("an edit is due");
            ops.push(op);
            b.sent(request);
            // Nothing more until it is answered.
            assert_eq!(b.next(&frame(Vec::new()), t + 10.0), None);
            let outcome = if request == 5 { EditOutcome::Blocked } else { EditOutcome::Committed };
            events = done(request, 77, outcome);
        }
        assert!(matches!(ops[0], EditOp::Place { kind: 1, state: 0, .. }), "{ops:?}");
        assert_eq!(ops[1], EditOp::SetState { object: 77, state: 1 });
        assert!(matches!(ops[2], EditOp::Move { object: 77, .. }));
        assert_eq!(ops[3], EditOp::Remove { object: 77 });
        assert!(matches!(ops[4], EditOp::Place { .. }));
        // The placement was refused: the cycle starts over with a placement.
        assert!(matches!(ops[5], EditOp::Place { .. }), "{ops:?}");
        assert!(Builder::new(0, &WorldDesc::flat(100.0)).is_none());
    }
}
