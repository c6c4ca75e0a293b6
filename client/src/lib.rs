//! pwn-client: the engine-agnostic client library.
//!
//! # Layout
//! - [`predict`]: the local player's prediction with pwn-sim, reconciliation against
//!   authoritative snapshots (rollback and replay of unacknowledged inputs), and smoothing of
//!   the remaining visual error.
//!
//! - [`interp`]: remote entities drawn between snapshots with an adaptive delay.
//!
//! Not yet: the connection and game-loop API (`update(dt, input) -> view`), predicted
//! projectiles, the headless bot mode.

pub mod interp;
pub mod predict;
