//! pwn-client: the engine-agnostic client library.
//!
//! # Layout
//! - [`connection`]: [`Client`], one QUIC connection to the server and the game-loop API:
//!   `update(dt, intent) -> Frame`, chat, counters. Bots use it headless, driven by a timer.
//! - [`game`]: the core behind it, with no IO: fixed-rate inputs with redundancy, prediction,
//!   interpolation, predicted projectiles, counters.
//! - [`frame`]: the game loop's side of it: the player's intent in, what to draw out.
//! - [`mirror`]: what of the server's view the predicted world holds: crates, and the other
//!   characters near the player.
//! - [`predict`]: the local player's prediction with pwn-sim, reconciliation against
//!   authoritative snapshots (rollback and replay of unacknowledged inputs), and smoothing of
//!   the remaining visual error.
//! - [`interp`]: remote entities drawn between snapshots with an adaptive delay.
//! - [`pacing`]: how the client keeps the zone's queue of its inputs short.
//! - [`counters`]: what a client measures, in mergeable histograms.
//! - [`handoff_meter`]: how many ticks a crossing player went without progress.

pub mod connection;
pub mod counters;
pub mod frame;
pub mod game;
pub mod handoff_meter;
pub mod interp;
pub mod mirror;
pub mod pacing;
pub mod predict;

pub use connection::{Client, JoinError, JoinOptions, Login, Placed, place};
pub use counters::{ClientCounters, Histogram};
pub use game::{Drawn, DrawnProjectile, Frame, GameClient, Intent};
