//! Frames and datagrams, and the checks that make decoding hostile bytes safe.
//!
//! - A stream carries frames: a `u32` little-endian length, then that many bytes of one
//!   speedy-encoded [`Message`]. The length is checked against [`FRAME_SIZE_MAX`] and against
//!   the bound of the message kind (its first byte) before anything is decoded, and decoding
//!   reads only from that bounded slice, so no frame can make the decoder allocate more than a
//!   small multiple of its bound.
//! - A datagram is one speedy-encoded message, at most [`DATAGRAM_SIZE_MAX`] bytes.
//! - After decoding, [`validate`] checks every string length and list count against its bound.

use crate::messages::*;
use speedy::{Readable, Writable};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 7;
/// Bytes of the length prefix of a stream frame.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest frame body on a stream.
pub const FRAME_SIZE_MAX: usize = 64 * 1024;
/// Largest datagram: fits the minimum QUIC packet payload on any path.
pub const DATAGRAM_SIZE_MAX: usize = 1_100;
/// Bytes a `Routed` wrapper adds to the message it carries (tag, player id, length), so a
/// routed datagram still fits `DATAGRAM_SIZE_MAX`.
pub const ROUTED_OVERHEAD_BYTES: usize = 1 + 8 + 4;
/// Longest username, agent string.
pub const NAME_LEN_MAX: usize = 64;
/// Longest password accepted on the wire (the gateway applies its own, stricter rule).
pub const PASSWORD_LEN_MAX: usize = 256;
/// Longest free text (chat, notices, refusal messages).
pub const TEXT_LEN_MAX: usize = 512;
/// Most inputs repeated in one datagram.
pub const INPUT_REDUNDANCY_MAX: usize = 8;
/// Most entity updates in one snapshot.
pub const SNAPSHOT_ENTITIES_MAX: usize = 2_048;
/// Most removals in one snapshot.
pub const SNAPSHOT_REMOVED_MAX: usize = 2_048;
/// Most items in one inventory (and in one `Inventory` event).
pub const INVENTORY_ITEMS_MAX: usize = 64;
/// Largest service request or push body.
pub const RPC_BODY_LEN_MAX: usize = FRAME_SIZE_MAX - 64;

/// Why bytes could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not enough bytes yet: read at least this many more and try again. Not an error of the
    /// peer on a stream; on a datagram it means truncation, which the caller treats as a drop.
    #[error("incomplete: {needed} more bytes needed")]
    Incomplete {
        /// Bytes still missing.
        needed: usize,
    },
    /// The peer broke the protocol; close the connection with this reason.
    #[error("protocol violation: {0}")]
    Violation(Violation),
}

/// How the peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A frame longer than any message may be.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A message longer than its kind allows.
    #[error("message kind {kind} of {len} bytes exceeds its {max}-byte limit")]
    MessageTooLarge {
        /// Kind tag.
        kind: u8,
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// An unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The bytes do not decode as the message they claim to be.
    #[error("malformed message of kind {kind}: {why}")]
    Malformed {
        /// Kind tag.
        kind: u8,
        /// What speedy reported.
        why: String,
    },
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after a message")]
    TrailingBytes(usize),
    /// A field is out of range.
    #[error("field {field} out of range: {why}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The rule broken.
        why: String,
    },
    /// An empty frame or datagram.
    #[error("empty message")]
    Empty,
}

/// The largest encoded size a message of kind `tag` may have, or `None` for unknown kinds.
pub fn kind_size_max(tag: u8) -> Option<usize> {
    Some(match tag {
        1 => 16 + NAME_LEN_MAX,                                       // Hello
        2 => 32,                                                      // Welcome
        3 => 16 + TEXT_LEN_MAX,                                       // Refused
        10 | 11 => 16 + NAME_LEN_MAX + PASSWORD_LEN_MAX,              // Register, Login
        12 => 1 + 16,                                                 // Resume
        13 => 1,                                                      // Logout
        14 => 1 + 8 + 16,                                             // AuthOk
        15 => 16 + TEXT_LEN_MAX,                                      // AuthFailed
        20 => 16 + INPUT_REDUNDANCY_MAX * 19,                         // Inputs
        21 => FRAME_SIZE_MAX,                                         // Snapshot
        22 => 1 + 8,                                                  // SnapshotAck
        30 => 32 + max_usize(TEXT_LEN_MAX, INVENTORY_ITEMS_MAX * 12), // Event
        31 => 16 + TEXT_LEN_MAX,                                      // Chat
        32 => 1 + 16,                                                 // GiveItem
        33 => 1 + 8 + 1 + 22,                                         // EditObject
        40 | 41 => 1 + 16,                                            // Ping, Pong
        50..=52 => FRAME_SIZE_MAX,                                    // RPC
        60 => 1 + 9,                                                  // Attach
        61 => 1 + 8,                                                  // Detach
        62 => 16 + DATAGRAM_SIZE_MAX,                                 // Routed
        63 => 1 + 32,                                                 // ServiceAuth
        70 => FRAME_SIZE_MAX,                                         // Ghosts
        71 => 256 + crate::mesh::HANDOFF_INPUTS_MAX * 32,             // HandoffPlayer
        72 => 1 + 32,                                                 // GhostHit
        73 => 32 + TEXT_LEN_MAX,                                      // BorderChat
        74 => 32 + crate::mesh::ADDR_LEN_MAX,                         // Rehome
        75 => 1 + 64,                                                 // HandoffProjectile
        76 => 16 + 64,                                                // BorderEvent
        77 => 16 + crate::mesh::CRATE_GHOSTS_PER_MESSAGE_MAX * 64,    // CrateGhosts
        78 => 64 + 64,                                                // HandoffCrate
        79 => 16 + crate::mesh::OBJECT_GHOSTS_PER_MESSAGE_MAX * 48,   // ObjectGhosts
        80 => 128,                                                    // HandoffObject
        _ => return None,
    })
}

const fn max_usize(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

fn too_long(field: &'static str, len: usize, max: usize) -> Result<(), Violation> {
    if len > max {
        return Err(Violation::OutOfRange { field, why: format!("{len} > {max}") });
    }
    Ok(())
}

fn finite(field: &'static str, ok: bool) -> Result<(), Violation> {
    if ok { Ok(()) } else { Err(Violation::OutOfRange { field, why: "not a finite number".into() }) }
}

/// Checks every bounded field of a decoded message.
pub fn validate(m: &Message) -> Result<(), Violation> {
    match m {
        Message::Hello(h) => too_long("hello.agent", h.agent.len(), NAME_LEN_MAX),
        Message::Refused(r) => too_long("refused.message", r.message.len(), TEXT_LEN_MAX),
        Message::Register(c) | Message::Login(c) => {
            too_long("credentials.username", c.username.len(), NAME_LEN_MAX)?;
            too_long("credentials.password", c.password.len(), PASSWORD_LEN_MAX)
        }
        Message::AuthFailed(a) => too_long("auth_failed.message", a.message.len(), TEXT_LEN_MAX),
        Message::Inputs(b) => {
            too_long("inputs", b.inputs.len(), INPUT_REDUNDANCY_MAX)?;
            if b.inputs.is_empty() {
                return Err(Violation::OutOfRange { field: "inputs", why: "empty".into() });
            }
            Ok(())
        }
        Message::Snapshot(s) => {
            too_long("snapshot.updates", s.updates.len(), FRAME_SIZE_MAX)?;
            too_long("snapshot.removed", s.removed.len(), SNAPSHOT_REMOVED_MAX)
        }
        Message::Event(GameEvent::Chat { text, .. }) | Message::Event(GameEvent::Notice { text }) => {
            too_long("event.text", text.len(), TEXT_LEN_MAX)
        }
        Message::Event(GameEvent::Inventory { items }) => too_long("event.items", items.len(), INVENTORY_ITEMS_MAX),
        Message::Chat(c) => too_long("chat.text", c.text.len(), TEXT_LEN_MAX),
        Message::RpcRequest(r) => too_long("rpc.body", r.body.len(), RPC_BODY_LEN_MAX),
        Message::RpcResponse(RpcResponse::Ok(b)) => too_long("rpc.body", b.len(), RPC_BODY_LEN_MAX),
        Message::RpcResponse(RpcResponse::Err { message, .. }) => too_long("rpc.message", message.len(), TEXT_LEN_MAX),
        Message::Notify(n) => too_long("notify.body", n.body.len(), RPC_BODY_LEN_MAX),
        // Character states and positions cross with their exact bits: a non-finite one is no
        // state any simulation produces, and is refused here.
        Message::Ghosts(g) => {
            too_long("ghosts.states", g.states.len(), crate::mesh::GHOSTS_PER_MESSAGE_MAX)?;
            finite("ghosts.states", g.states.iter().all(|s| s.character.is_finite()))
        }
        Message::HandoffPlayer(h) => {
            too_long("handoff.waiting", h.waiting.len(), crate::mesh::HANDOFF_INPUTS_MAX)?;
            finite("handoff.character", h.character.is_finite() && h.waiting.iter().all(|i| i.is_finite()))
        }
        Message::BorderChat(c) => {
            too_long("border_chat.text", c.text.len(), TEXT_LEN_MAX)?;
            finite("border_chat.position_m", c.position_m.iter().all(|v| v.is_finite()))
        }
        Message::HandoffProjectile(h) => finite("handoff_projectile", h.projectile.is_finite()),
        Message::BorderEvent(e) => {
            finite("border_event.position_m", e.position_m.iter().all(|v| v.is_finite()))?;
            match e.event {
                GameEvent::Fired { .. } | GameEvent::Hit { .. } => Ok(()),
                _ => Err(Violation::OutOfRange { field: "border_event.event", why: "only Fired and Hit cross".into() }),
            }
        }
        Message::CrateGhosts(g) => {
            too_long("crate_ghosts.crates", g.crates.len(), crate::mesh::CRATE_GHOSTS_PER_MESSAGE_MAX)?;
            finite("crate_ghosts.crates", g.crates.iter().all(|c| c.is_finite()))
        }
        Message::HandoffCrate(h) => finite("handoff_crate.state", h.state.is_finite()),
        Message::HandoffObject(h) => finite("handoff_object", h.is_finite()),
        Message::ObjectGhosts(g) => {
            too_long("object_ghosts.objects", g.objects.len(), crate::mesh::OBJECT_GHOSTS_PER_MESSAGE_MAX)?;
            finite("object_ghosts.objects", g.objects.iter().all(|o| o.is_finite()))
        }
        Message::Rehome(r) => too_long("rehome.addr", r.addr.len(), crate::mesh::ADDR_LEN_MAX),
        Message::Routed(r) => too_long("routed.payload", r.payload.len(), DATAGRAM_SIZE_MAX - ROUTED_OVERHEAD_BYTES),
        _ => Ok(()),
    }
}

/// Why a message could not be encoded: it breaks a bound (a bug on our side, never sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode: {0}")]
pub struct EncodeError(pub Violation);

/// Encodes a message body (no length prefix), checking its bounds.
pub fn encode(m: &Message) -> Result<Vec<u8>, EncodeError> {
    validate(m).map_err(EncodeError)?;
    let bytes = m.write_to_vec().map_err(|e| EncodeError(Violation::Malformed { kind: 0, why: e.to_string() }))?;
    let tag = bytes.first().copied().unwrap_or(0);
    let max = kind_size_max(tag).unwrap_or(0);
    if bytes.len() > max {
        return Err(EncodeError(Violation::MessageTooLarge { kind: tag, len: bytes.len(), max }));
    }
    Ok(bytes)
}

/// Encodes a message as a stream frame (length prefix plus body).
pub fn encode_frame(m: &Message) -> Result<Vec<u8>, EncodeError> {
    let body = encode(m)?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Encodes a message as a datagram.
pub fn encode_datagram(m: &Message) -> Result<Vec<u8>, EncodeError> {
    let body = encode(m)?;
    if body.len() > DATAGRAM_SIZE_MAX {
        return Err(EncodeError(Violation::FrameTooLarge { len: body.len(), max: DATAGRAM_SIZE_MAX }));
    }
    Ok(body)
}

/// Decodes one complete message body (the bytes of a frame after its length, or a datagram).
pub fn decode(body: &[u8]) -> Result<Message, Violation> {
    let Some(&tag) = body.first() else { return Err(Violation::Empty) };
    let max = kind_size_max(tag).ok_or(Violation::UnknownKind(tag))?;
    if body.len() > max {
        return Err(Violation::MessageTooLarge { kind: tag, len: body.len(), max });
    }
    let (message, used) = Message::read_with_length_from_buffer(body);
    let message = message.map_err(|e| Violation::Malformed { kind: tag, why: e.to_string() })?;
    if used != body.len() {
        return Err(Violation::TrailingBytes(body.len().saturating_sub(used)));
    }
    validate(&message)?;
    Ok(message)
}

/// Decodes the first frame in `buf`, returning the message and the bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(DecodeError::Incomplete { needed: FRAME_HEADER_LEN - buf.len() });
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > FRAME_SIZE_MAX {
        return Err(DecodeError::Violation(Violation::FrameTooLarge { len, max: FRAME_SIZE_MAX }));
    }
    if len == 0 {
        return Err(DecodeError::Violation(Violation::Empty));
    }
    // Reject an oversized kind as soon as its tag arrives, before waiting for the body.
    if let Some(&tag) = buf.get(FRAME_HEADER_LEN) {
        let max = kind_size_max(tag).ok_or(DecodeError::Violation(Violation::UnknownKind(tag)))?;
        if len > max {
            return Err(DecodeError::Violation(Violation::MessageTooLarge { kind: tag, len, max }));
        }
    }
    let total = FRAME_HEADER_LEN + len;
    if buf.len() < total {
        return Err(DecodeError::Incomplete { needed: total - buf.len() });
    }
    let message = decode(&buf[FRAME_HEADER_LEN..total]).map_err(DecodeError::Violation)?;
    Ok((message, total))
}

/// Decodes a datagram.
pub fn decode_datagram(datagram: &[u8]) -> Result<Message, Violation> {
    if datagram.len() > DATAGRAM_SIZE_MAX {
        return Err(Violation::FrameTooLarge { len: datagram.len(), max: DATAGRAM_SIZE_MAX });
    }
    decode(datagram)
}
