//! Editing world objects: what a player asks (`EditObject`) and what the zone answers
//! (`GameEvent::EditDone`). Objects themselves travel in snapshots like every entity: their id
//! carries their kind (`pwn_sim::EntityId::object`), the `health` field their state.
//!
//! Rules (the zone's side is `pwn_zone_node::objects`):
//! - `[edit-1]` every request carries a request number the client chose, strictly increasing
//!   per player (across sessions: the client library counts from its clock); a number at or below the last one the store committed for that player is
//!   answered with the stored outcome or refused as stale, never applied twice;
//! - `[edit-2]` a request is answered exactly once with `EditDone`, after the store committed it
//!   or with the reason it was refused.

use speedy::{Readable, Writable};

/// What to do to an object.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum EditOp {
    /// Place a new object of `kind` (an index into the world file's kinds).
    Place {
        /// The kind.
        kind: u16,
        /// Centre, on pwn-sim's position grid.
        position: [i32; 3],
        /// Heading as a fraction of a turn (objects are placed upright).
        yaw: u16,
        /// Its first state.
        state: u16,
    },
    /// Move and turn an object.
    Move {
        /// The object.
        object: u64,
        /// New centre, on the position grid.
        position: [i32; 3],
        /// New heading.
        yaw: u16,
    },
    /// Change an object's state (open a door).
    SetState {
        /// The object.
        object: u64,
        /// The new state.
        state: u16,
    },
    /// Remove an object.
    Remove {
        /// The object.
        object: u64,
    },
}

impl EditOp {
    /// The object the edit is about (`None` for a placement: it has no id yet).
    pub fn object(&self) -> Option<u64> {
        match *self {
            Self::Place { .. } => None,
            Self::Move { object, .. } | Self::SetState { object, .. } | Self::Remove { object } => Some(object),
        }
    }
}

/// A player's request to change the world.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct EditObject {
    /// The client's number for this request (`[edit-1]`); the client library takes it from its
    /// clock in microseconds, so numbers keep increasing across sessions.
    pub request: u64,
    /// What to do.
    pub op: EditOp,
}

/// How an edit ended.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum EditOutcome {
    /// Committed to the store; players near it see it from the next snapshot.
    Committed = 0,
    /// The player is too far from where the object is or would be.
    OutOfReach = 1,
    /// The kind's rules do not let this player change it.
    NotAllowed = 2,
    /// Something is in the way (a character, a wall, another object).
    Blocked = 3,
    /// Outside what this zone serves, or outside the world.
    OutOfBounds = 4,
    /// The cell already holds as many objects as it may.
    CellFull = 5,
    /// The player already owns as many objects as it may.
    PlayerFull = 6,
    /// Too many edits too fast.
    RateLimited = 7,
    /// The zone's queue to the store is full; try again.
    Busy = 8,
    /// Someone else changed the object first (or the request number was already used).
    Stale = 9,
    /// No such object here.
    Missing = 10,
    /// Not a kind, state or pose objects can have.
    Invalid = 11,
    /// The store could not record it (nothing changed); try again.
    StoreFailed = 12,
}

impl EditOutcome {
    /// Words for the player.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Committed => "done",
            Self::OutOfReach => "out of reach",
            Self::NotAllowed => "not yours to change",
            Self::Blocked => "something is in the way",
            Self::OutOfBounds => "not here",
            Self::CellFull => "no room for more objects here",
            Self::PlayerFull => "you have placed as many objects as you may",
            Self::RateLimited => "too fast",
            Self::Busy => "the world is busy; try again",
            Self::Stale => "it changed meanwhile",
            Self::Missing => "no such object",
            Self::Invalid => "not something that can be built",
            Self::StoreFailed => "the world could not record that; try again",
        }
    }
}
