//! pwn-proto: the PWN wire protocol as a pure codec, with no IO (the transport in `pwn-net`
//! pumps bytes through it).
//!
//! # Layout
//! - [`messages`]: every message, grouped by family (handshake, login/session, inputs,
//!   snapshots and acks, reliable events, ping, service RPC).
//! - [`mesh`]: messages between services: ghosts, handoffs, hits and chat across borders,
//!   a player's new zone.
//! - [`codec`]: frames (streams) and datagrams, per-kind size bounds checked before decoding,
//!   field validation, typed decode errors that tell "incomplete" from "the peer broke the
//!   protocol".
//! - [`handshake`]: the version and simulation checks.
//! - [`delta`]: snapshot deltas against an acknowledged baseline.
//! - [`objects`]: edits of world objects and their outcomes.
//! - [`view`]: the entity states a client holds, sorted by id in one list.

pub mod codec;
pub mod delta;
pub mod handshake;
pub mod mesh;
pub mod messages;
pub mod objects;
pub mod view;

pub use codec::{
    DecodeError, PROTOCOL_VERSION, Violation, decode_datagram, decode_frame, encode_datagram, encode_frame,
};
pub use mesh::*;
pub use messages::*;
pub use objects::*;
