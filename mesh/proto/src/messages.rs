//! Every message PWN peers exchange, grouped by family. Each is encoded with speedy as one
//! variant of [`Message`]; the variant tag is the first byte of the encoding, which lets the
//! decoder check the kind's size bound before decoding anything else.

use pwn_sim::quantize::{dequantize_pitch, dequantize_yaw, quantize_pitch, quantize_yaw};
use pwn_sim::{Buttons, InputSeq, PlayerInput};
use speedy::{Readable, Writable};

/// What kind of peer is speaking, announced in the handshake.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum PeerRole {
    /// A game client (through a gateway).
    Client = 1,
    /// A gateway forwarding players.
    Gateway = 2,
    /// A zone node.
    Zone = 3,
    /// The world server (partitioner).
    World = 4,
    /// A tool or benchmark.
    Tool = 5,
}

/// The first message on a connection, from the connecting side.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Hello {
    /// The wire protocol version the peer speaks.
    pub protocol_version: u16,
    /// `pwn_sim::build_digest` of the peer's simulation (prediction needs the same sim).
    pub sim_digest: u64,
    /// Who is connecting.
    pub role: PeerRole,
    /// Free text for logs (program and version), at most `NAME_LEN_MAX` bytes.
    pub agent: String,
}

/// The accepting side's answer when the handshake succeeds.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Welcome {
    /// The protocol version in use.
    pub protocol_version: u16,
    /// The server's simulation digest.
    pub sim_digest: u64,
    /// Simulation rate, so the client samples input at the same tick.
    pub tick_hz: u16,
}

/// Why a connection is refused or closed.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum RefuseCode {
    /// Different protocol version.
    VersionMismatch = 1,
    /// Different simulation build or parameters.
    SimMismatch = 2,
    /// The peer broke the protocol (malformed or oversized frame, wrong message for the state).
    ProtocolViolation = 3,
    /// The server is full or shutting down.
    Unavailable = 4,
    /// Too many messages.
    RateLimited = 5,
}

/// A refusal with a human-readable explanation, sent before closing.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Refused {
    /// Machine-readable reason.
    pub code: RefuseCode,
    /// What to tell the user, at most `TEXT_LEN_MAX` bytes.
    pub message: String,
}

/// Username and password for register and login (the password only ever travels inside TLS
/// and is hashed on arrival).
#[derive(Readable, Writable, Clone, PartialEq)]
pub struct Credentials {
    /// At most `NAME_LEN_MAX` bytes.
    pub username: String,
    /// At most `PASSWORD_LEN_MAX` bytes.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password, even in debug logs.
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// An opaque 128-bit session token.
#[derive(Readable, Writable, Copy, Clone, PartialEq, Eq)]
pub struct SessionToken(pub [u8; 16]);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// Successful login or registration.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct AuthOk {
    /// The player's global id.
    pub player_id: u64,
    /// The session token to resume with.
    pub token: SessionToken,
}

/// Why authentication failed; deliberately vague about which credential was wrong.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum AuthError {
    /// Unknown user or wrong password (indistinguishable on purpose).
    InvalidCredentials = 1,
    /// The username is taken.
    NameTaken = 2,
    /// The username or password does not meet the rules.
    InvalidInput = 3,
    /// Too many attempts.
    RateLimited = 4,
    /// The session is unknown, expired or revoked.
    SessionInvalid = 5,
}

/// Failed login or registration.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct AuthFailed {
    /// Reason.
    pub error: AuthError,
    /// Explanation, at most `TEXT_LEN_MAX` bytes.
    pub message: String,
}

/// One tick of player input, quantized for the wire.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct WireInput {
    /// Sequence number.
    pub seq: u32,
    /// Strafe, -127..=127 for -1..=1.
    pub move_x: i8,
    /// Forward, -127..=127 for -1..=1.
    pub move_z: i8,
    /// Heading as a fraction of a turn.
    pub yaw: u16,
    /// Elevation.
    pub pitch: i16,
    /// Button bits.
    pub buttons: u8,
    /// The server tick the client was drawing remote characters at when it made this input
    /// (its interpolation tick, rounded); 0 if not known. Shots are hit tested against
    /// characters where they were then (lag compensation, `pwn_sim::lagcomp`), as far back as
    /// the zone allows.
    pub view_tick: u64,
}

fn axis_to_wire(v: f32) -> i8 {
    if v.is_finite() { (v.clamp(-1.0, 1.0) * 127.0).round() as i8 } else { 0 }
}

impl WireInput {
    /// Quantizes an input. A client predicts with `from_input(i).to_input()`, exactly what the
    /// server will apply, so quantization never causes a misprediction.
    pub fn from_input(i: &PlayerInput) -> Self {
        Self {
            seq: i.seq.0,
            move_x: axis_to_wire(i.move_x),
            move_z: axis_to_wire(i.move_z),
            yaw: quantize_yaw(i.yaw_rad),
            pitch: quantize_pitch(i.pitch_rad),
            buttons: i.buttons.0,
            view_tick: i.view_tick,
        }
    }

    /// The input the simulation applies.
    pub fn to_input(self) -> PlayerInput {
        PlayerInput {
            seq: InputSeq(self.seq),
            move_x: f32::from(self.move_x.max(-127)) / 127.0,
            move_z: f32::from(self.move_z.max(-127)) / 127.0,
            yaw_rad: dequantize_yaw(self.yaw),
            pitch_rad: dequantize_pitch(self.pitch),
            buttons: Buttons(self.buttons),
            view_tick: self.view_tick,
        }
    }
}

/// The newest inputs of one player, newest first: each datagram repeats the last few so that
/// a lost datagram costs nothing.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct InputBatch {
    /// The last snapshot tick the client has received (an acknowledgement riding along).
    pub ack_tick: u64,
    /// Up to `INPUT_REDUNDANCY_MAX` inputs, newest first, consecutive sequence numbers.
    pub inputs: Vec<WireInput>,
}

/// One entity's state in a snapshot (decoded from `Snapshot::updates`); `None` fields are
/// unchanged from the baseline.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EntityUpdate {
    /// Global entity id.
    pub id: u64,
    /// Position on pwn-sim's grid.
    pub position: Option<[i32; 3]>,
    /// Velocity on pwn-sim's grid.
    pub velocity: Option<[i16; 3]>,
    /// Heading.
    pub yaw: Option<u16>,
    /// Orientation, smallest-three.
    pub rotation: Option<u32>,
    /// Health.
    pub health: Option<u16>,
}

/// What a player sees at a tick, as a delta against a snapshot the client acknowledged.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The tick this describes.
    pub tick: u64,
    /// The acknowledged snapshot this is a delta against (0: none, everything is present).
    pub baseline_tick: u64,
    /// The last input sequence the server applied for this player.
    pub input_ack: u32,
    /// The player's inputs waiting at the server after this tick (the client paces its inputs
    /// to steer this; see pwn-client `[game-7]`).
    pub input_backlog: u8,
    /// Changed or new entities, packed against the baseline (`delta::pack` / `delta::unpack`):
    /// a few bytes per moving entity instead of dozens.
    pub updates: Vec<u8>,
    /// Entities that left the player's view.
    pub removed: Vec<u64>,
}

/// Acknowledges a snapshot (also carried in every `InputBatch`).
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct SnapshotAck {
    /// The newest snapshot tick received.
    pub tick: u64,
}

/// Which chat channel.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
#[speedy(tag_type = u8)]
pub enum ChatChannel {
    /// Players within the proximity radius.
    Proximity = 1,
    /// The whole zone.
    Zone = 2,
}

/// A reliable game event.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
#[speedy(tag_type = u8)]
pub enum GameEvent {
    /// A projectile hit something.
    Hit {
        /// Projectile id.
        projectile: u64,
        /// Shooter.
        shooter: u64,
        /// Target entity (0 for static geometry).
        target: u64,
        /// Damage dealt.
        damage: u16,
    },
    /// A character died.
    Death {
        /// Who.
        entity: u64,
        /// By whom (0 for nobody).
        killer: u64,
    },
    /// A chat line.
    Chat {
        /// Speaker.
        from: u64,
        /// Channel.
        channel: ChatChannel,
        /// Text, at most `TEXT_LEN_MAX` bytes.
        text: String,
    },
    /// Something the player should be told.
    Notice {
        /// Text, at most `TEXT_LEN_MAX` bytes.
        text: String,
    },
    /// The player's own character in this zone (sent when it joins).
    Joined {
        /// The player's entity id.
        entity: u64,
        /// The zone's tick at the time.
        tick: u64,
    },
    /// A projectile was fired within the player's interest radius. Its flight is deterministic
    /// (pwn-sim's ballistics on the quantization grids), so clients fly it themselves from
    /// here instead of receiving it in every snapshot; a `Hit` ends it.
    Fired {
        /// The projectile's deterministic id (`pwn_sim::EntityId::projectile`).
        projectile: u64,
        /// Who fired it.
        owner: u64,
        /// The tick at whose end it was at `position` with `velocity`.
        tick: u64,
        /// Position on pwn-sim's grid.
        position: [i32; 3],
        /// Velocity on pwn-sim's grid.
        velocity: [i16; 3],
    },
    /// A character appeared (joined, or respawned) within the player's interest radius; a
    /// player's own respawn is announced to it too (its own join is `Joined`).
    Spawned {
        /// The character.
        entity: u64,
        /// Where, on pwn-sim's grid.
        position: [i32; 3],
    },
    /// The player's whole inventory (sent when it joins a zone), at most
    /// `INVENTORY_ITEMS_MAX` items.
    Inventory {
        /// The items, by id.
        items: Vec<ItemEntry>,
    },
    /// An item of value changed owner (a committed store transaction): sent to both sides.
    ItemMoved {
        /// The item.
        item: u64,
        /// Its kind.
        kind: u32,
        /// The previous owner.
        from: u64,
        /// The new owner.
        to: u64,
    },
    /// Another zone node now simulates the player (it crossed a border). Ticks, input
    /// sequences and prediction continue unchanged; the next snapshot is a full one.
    AuthorityMoved {
        /// The first tick the new zone simulates the player at.
        tick: u64,
    },
    /// The answer to a player's `EditObject` (`crate::objects` `[edit-2]`).
    EditDone {
        /// The request's number.
        request: u64,
        /// The object (a placed one's new id); 0 when a placement was refused.
        object: u64,
        /// How it ended.
        outcome: crate::objects::EditOutcome,
    },
}

/// One item of value a player owns.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct ItemEntry {
    /// The item's global id.
    pub id: u64,
    /// Its kind (game-defined).
    pub kind: u32,
}

/// Item kind: a torch (part of the starter kit).
pub const ITEM_TORCH: u32 = 1;
/// Item kind: a map (part of the starter kit).
pub const ITEM_MAP: u32 = 2;
/// Item kind: a pouch of coins (part of the starter kit).
pub const ITEM_COIN_POUCH: u32 = 3;

/// A readable name for an item kind (kinds are game-defined; unknown ones are "item").
pub fn item_kind_name(kind: u32) -> &'static str {
    match kind {
        ITEM_TORCH => "torch",
        ITEM_MAP => "map",
        ITEM_COIN_POUCH => "coin pouch",
        _ => "item",
    }
}

/// A player hands one of its items to another player nearby.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct GiveItem {
    /// The item.
    pub item: u64,
    /// The receiving player.
    pub to: u64,
}

/// A chat line a player sends.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct ChatSend {
    /// Channel.
    pub channel: ChatChannel,
    /// Text, at most `TEXT_LEN_MAX` bytes.
    pub text: String,
}

/// Round-trip probe (echoed back unchanged as `Pong`).
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    /// Sender's sequence number.
    pub seq: u64,
    /// Sender's clock, echoed back (never interpreted by the receiver).
    pub sent_us: u64,
}

/// A service request.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct RpcRequest {
    /// Which operation.
    pub method: u16,
    /// Encoded arguments, at most `RPC_BODY_LEN_MAX` bytes.
    pub body: Vec<u8>,
}

/// A service response.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
#[speedy(tag_type = u8)]
pub enum RpcResponse {
    /// Success with an encoded result.
    Ok(Vec<u8>),
    /// Failure.
    Err {
        /// Application error code.
        code: u16,
        /// Explanation, at most `TEXT_LEN_MAX` bytes.
        message: String,
    },
}

/// A one-way push between services.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Notify {
    /// What it is about.
    pub topic: u16,
    /// Encoded payload, at most `RPC_BODY_LEN_MAX` bytes.
    pub body: Vec<u8>,
}

/// Gateway to zone: a player whose session the gateway holds enters the zone.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    /// The player's global id (the gateway authenticated it).
    pub player: u64,
    /// The zone told the gateway the player was handed over here (`Rehome` naming this
    /// zone): the zone waits a moment for the handoff instead of placing it from the store.
    pub handoff: bool,
}

/// Gateway to zone: the player leaves the zone (logout, disconnect, or a switch of zone).
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct Detach {
    /// The player's global id.
    pub player: u64,
}

/// One player's message on a gateway–zone link: `payload` is the message encoded as a
/// datagram would be (`encode_datagram`), so the gateway forwards it without re-encoding.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Routed {
    /// The player's global id.
    pub player: u64,
    /// The encoded message.
    pub payload: Vec<u8>,
}

/// A gateway's proof, first on its link, that it is one of the deployment's services (the
/// shared service key; sent inside TLS, to a zone the TLS handshake authenticated).
#[derive(Readable, Writable, Clone, PartialEq, Eq)]
pub struct ServiceAuth {
    /// The key.
    pub key: [u8; 32],
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAuth(<redacted>)")
    }
}

/// Every message. The speedy tag (first byte) names the kind.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
#[speedy(tag_type = u8)]
pub enum Message {
    /// Handshake, from the connecting side.
    #[speedy(tag = 1)]
    Hello(Hello),
    /// Handshake accepted.
    #[speedy(tag = 2)]
    Welcome(Welcome),
    /// Handshake refused or connection closed, with the reason.
    #[speedy(tag = 3)]
    Refused(Refused),
    /// Create an account.
    #[speedy(tag = 10)]
    Register(Credentials),
    /// Log in.
    #[speedy(tag = 11)]
    Login(Credentials),
    /// Resume a session.
    #[speedy(tag = 12)]
    Resume(SessionToken),
    /// End the session.
    #[speedy(tag = 13)]
    Logout,
    /// Authentication succeeded.
    #[speedy(tag = 14)]
    AuthOk(AuthOk),
    /// Authentication failed.
    #[speedy(tag = 15)]
    AuthFailed(AuthFailed),
    /// Player inputs (datagram).
    #[speedy(tag = 20)]
    Inputs(InputBatch),
    /// World state (datagram).
    #[speedy(tag = 21)]
    Snapshot(Snapshot),
    /// Snapshot acknowledgement (datagram).
    #[speedy(tag = 22)]
    SnapshotAck(SnapshotAck),
    /// A reliable game event (stream).
    #[speedy(tag = 30)]
    Event(GameEvent),
    /// A chat line from a player (stream).
    #[speedy(tag = 31)]
    Chat(ChatSend),
    /// A player gives an item away (stream).
    #[speedy(tag = 32)]
    GiveItem(GiveItem),
    /// A player edits a world object (stream).
    #[speedy(tag = 33)]
    EditObject(crate::objects::EditObject),
    /// Round-trip probe.
    #[speedy(tag = 40)]
    Ping(Ping),
    /// Round-trip answer.
    #[speedy(tag = 41)]
    Pong(Ping),
    /// Service request (stream).
    #[speedy(tag = 50)]
    RpcRequest(RpcRequest),
    /// Service response (stream).
    #[speedy(tag = 51)]
    RpcResponse(RpcResponse),
    /// Service push (stream).
    #[speedy(tag = 52)]
    Notify(Notify),
    /// A player enters a zone through a gateway (stream).
    #[speedy(tag = 60)]
    Attach(Attach),
    /// A player leaves a zone through a gateway (stream).
    #[speedy(tag = 61)]
    Detach(Detach),
    /// One player's message between gateway and zone (stream or datagram).
    #[speedy(tag = 62)]
    Routed(Routed),
    /// A gateway proves it is a service (stream, first on a link).
    #[speedy(tag = 63)]
    ServiceAuth(ServiceAuth),
    /// A zone's ghosts for a neighbour at a tick (zone link, stream).
    #[speedy(tag = 70)]
    Ghosts(crate::mesh::Ghosts),
    /// A player handed to a neighbour after the store committed it (zone link, stream).
    #[speedy(tag = 71)]
    HandoffPlayer(crate::mesh::HandoffPlayer),
    /// A hit on the receiver's character scored while it was a ghost (zone link, stream).
    #[speedy(tag = 72)]
    GhostHit(crate::mesh::GhostHit),
    /// Proximity chat across a border (zone link, stream).
    #[speedy(tag = 73)]
    BorderChat(crate::mesh::BorderChat),
    /// A player's new zone, for the gateway (gateway link, stream).
    #[speedy(tag = 74)]
    Rehome(crate::mesh::Rehome),
    /// A projectile flown on by the receiver (zone link, stream).
    #[speedy(tag = 75)]
    HandoffProjectile(crate::mesh::HandoffProjectile),
    /// A shot or hit near the border, for the receiver's players (zone link, stream).
    #[speedy(tag = 76)]
    BorderEvent(crate::mesh::BorderEvent),
    /// A zone's crates near a neighbour at a tick (zone link, stream).
    #[speedy(tag = 77)]
    CrateGhosts(crate::mesh::CrateGhosts),
    /// A crate handed to a neighbour after the store committed it (zone link, stream).
    #[speedy(tag = 78)]
    HandoffCrate(crate::mesh::HandoffCrate),
    /// A zone's world objects near a neighbour (zone link, stream).
    #[speedy(tag = 79)]
    ObjectGhosts(crate::mesh::ObjectGhosts),
    /// A dynamic object handed to a neighbour after the store committed it (zone link, stream).
    #[speedy(tag = 80)]
    HandoffObject(crate::mesh::HandoffObject),
}
