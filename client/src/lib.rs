//! pwn-client: the engine-agnostic client library.
//!
//! # Layout
//! - [`predict`]: the local player's prediction with pwn-sim, reconciliation against
//!   authoritative snapshots (rollback and replay of unacknowledged inputs), and smoothing of
//!   the remaining visual error.
//!
//! Not yet: the connection and game-loop API (`update(dt, input) -> view`), interpolation of
//! remote entities, predicted projectiles, the headless bot mode.

pub mod predict;
