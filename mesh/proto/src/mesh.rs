//! Messages between the services of the mesh: zone to zone (ghosts, handoffs, hits and chat
//! across borders) and zone to gateway (a player's new zone). Character states cross the
//! wire with their exact bits (`f32` as they are), so the zone that takes a player over
//! continues its simulation bit for bit and the player's prediction never notices.

use pwn_sim::{Buttons, CharacterState, InputSeq, PlayerInput};
use speedy::{Readable, Writable};

/// Most ghost states in one `Ghosts` message (each about 75 bytes; a frame holds 64 KiB).
pub const GHOSTS_PER_MESSAGE_MAX: usize = 768;
/// Most waiting inputs carried by a handoff (the zone's input backlog bound is smaller).
pub const HANDOFF_INPUTS_MAX: usize = 16;
/// Longest address in a `Rehome`.
pub const ADDR_LEN_MAX: usize = 64;
/// Most crate states in one `CrateGhosts` message (each about 60 bytes).
pub const CRATE_GHOSTS_PER_MESSAGE_MAX: usize = 1_024;

/// A player's input with its exact bits (the zone's copy after sanitizing).
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Default)]
pub struct ExactInput {
    /// Sequence number.
    pub seq: u32,
    /// Strafe.
    pub move_x: f32,
    /// Forward.
    pub move_z: f32,
    /// Heading.
    pub yaw_rad: f32,
    /// Elevation.
    pub pitch_rad: f32,
    /// Button bits.
    pub buttons: u8,
}

impl ExactInput {
    /// The wire form of an input.
    pub fn of(i: &PlayerInput) -> Self {
        Self {
            seq: i.seq.0,
            move_x: i.move_x,
            move_z: i.move_z,
            yaw_rad: i.yaw_rad,
            pitch_rad: i.pitch_rad,
            buttons: i.buttons.0,
        }
    }

    /// Whether every float is finite (the codec refuses anything else, `codec::validate`).
    pub fn is_finite(&self) -> bool {
        [self.move_x, self.move_z, self.yaw_rad, self.pitch_rad].iter().all(|v| v.is_finite())
    }

    /// The input.
    pub fn input(&self) -> PlayerInput {
        PlayerInput {
            seq: InputSeq(self.seq),
            move_x: self.move_x,
            move_z: self.move_z,
            yaw_rad: self.yaw_rad,
            pitch_rad: self.pitch_rad,
            buttons: Buttons(self.buttons),
            view_tick: 0,
        }
    }
}

/// A character's whole simulated state, exact.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Default)]
pub struct WireCharacter {
    /// Position.
    pub position_m: [f32; 3],
    /// Velocity.
    pub velocity_mps: [f32; 3],
    /// Heading.
    pub yaw_rad: f32,
    /// Elevation.
    pub pitch_rad: f32,
    /// On the ground.
    pub grounded: bool,
    /// Health.
    pub health: u16,
    /// Ticks until respawn (dead characters).
    pub respawn_ticks: u16,
    /// Ticks until it may fire again.
    pub fire_cooldown_ticks: u16,
    /// The input repeated when one is missing.
    pub last_input: ExactInput,
    /// The last input sequence applied.
    pub last_seq: Option<u32>,
}

impl WireCharacter {
    /// The wire form of a character's state.
    pub fn of(c: &CharacterState) -> Self {
        Self {
            position_m: c.position_m.to_array(),
            velocity_mps: c.velocity_mps.to_array(),
            yaw_rad: c.yaw_rad,
            pitch_rad: c.pitch_rad,
            grounded: c.grounded,
            health: c.health,
            respawn_ticks: c.respawn_ticks,
            fire_cooldown_ticks: c.fire_cooldown_ticks,
            last_input: ExactInput::of(&c.last_input),
            last_seq: c.last_seq.map(|s| s.0),
        }
    }

    /// Whether every float is finite (the codec refuses anything else, `codec::validate`).
    pub fn is_finite(&self) -> bool {
        self.position_m.iter().chain(&self.velocity_mps).all(|v| v.is_finite())
            && self.yaw_rad.is_finite()
            && self.pitch_rad.is_finite()
            && self.last_input.is_finite()
    }

    /// The character's state (the simulation checks it again when it takes it).
    pub fn state(&self) -> CharacterState {
        CharacterState {
            position_m: self.position_m.into(),
            velocity_mps: self.velocity_mps.into(),
            yaw_rad: self.yaw_rad,
            pitch_rad: self.pitch_rad,
            grounded: self.grounded,
            health: self.health,
            respawn_ticks: self.respawn_ticks,
            fire_cooldown_ticks: self.fire_cooldown_ticks,
            last_input: self.last_input.input(),
            last_seq: self.last_seq.map(InputSeq),
        }
    }
}

/// One ghost: an entity the sending zone owns, near the receiving zone's cells.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq)]
pub struct GhostState {
    /// The entity.
    pub id: u64,
    /// Its state at the message's tick.
    pub character: WireCharacter,
}

/// Zone to zone, every tick: the ghosts the receiver should hold for the sender at `tick`.
/// A tick's ghosts may take several messages; the one with `complete` set is the last, and
/// ghosts of the sender not named in any of them are dropped by the receiver.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct Ghosts {
    /// The sender's node id.
    pub from_node: u64,
    /// The world tick of these states.
    pub tick: u64,
    /// Whether this is the tick's last message.
    pub complete: bool,
    /// At most `GHOSTS_PER_MESSAGE_MAX`.
    pub states: Vec<GhostState>,
}

/// A cell on the wire: quadtree level and Morton path.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct WireCell {
    /// Level.
    pub level: u8,
    /// Path.
    pub path: u64,
}

/// Zone to zone, after the handoff's store transaction committed: the player is now the
/// receiver's, with this state at `tick` and these inputs still waiting.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct HandoffPlayer {
    /// The player.
    pub player: u64,
    /// The world tick of the state.
    pub tick: u64,
    /// The cell that gave it.
    pub from_cell: WireCell,
    /// The cell that took it.
    pub to_cell: WireCell,
    /// The taking cell's lease epoch the handoff was fenced by.
    pub to_epoch: u64,
    /// The character.
    pub character: WireCharacter,
    /// The newest input sequence released to the simulation.
    pub last_released: Option<u32>,
    /// Inputs received and not yet applied, at most `HANDOFF_INPUTS_MAX`.
    pub waiting: Vec<ExactInput>,
}

/// Zone to zone: a projectile of the sender hit the receiver's character while it was a
/// ghost at the sender. The receiver applies it once per projectile.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Eq)]
pub struct GhostHit {
    /// The projectile (hits are applied once per projectile id).
    pub projectile: u64,
    /// Who fired it.
    pub shooter: u64,
    /// The character hit.
    pub target: u64,
    /// Damage to apply.
    pub damage: u16,
}

/// Zone to zone: a proximity chat line spoken near the border, for the receiver's players
/// within reach of `position_m`.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct BorderChat {
    /// The speaker.
    pub from: u64,
    /// Where it was spoken.
    pub position_m: [f32; 3],
    /// The line, at most `TEXT_LEN_MAX` bytes.
    pub text: String,
}

/// Zone to gateway: the player is now served by another zone node; route it there (the
/// client keeps its connection).
#[derive(Readable, Writable, Clone, Debug, PartialEq, Eq)]
pub struct Rehome {
    /// The player.
    pub player: u64,
    /// The node now owning it.
    pub node: u64,
    /// The node's address, at most `ADDR_LEN_MAX` bytes.
    pub addr: String,
}

/// A projectile's whole state, exact.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Default)]
pub struct WireProjectile {
    /// Its id (`pwn_sim::EntityId::projectile`).
    pub id: u64,
    /// Who fired it.
    pub owner: u64,
    /// Position.
    pub position_m: [f32; 3],
    /// Velocity.
    pub velocity_mps: [f32; 3],
    /// Ticks left before it expires.
    pub ticks_left: u16,
    /// Damage on a character hit.
    pub damage: u16,
    /// Ticks back its shooter saw characters (lag compensation), kept across the border.
    pub rewind_ticks: u8,
}

impl WireProjectile {
    /// The wire form of a projectile.
    pub fn of(p: &pwn_sim::Projectile) -> Self {
        Self {
            id: p.id.0,
            owner: p.owner.0,
            position_m: p.position_m.to_array(),
            velocity_mps: p.velocity_mps.to_array(),
            ticks_left: p.ticks_left,
            damage: p.damage,
            rewind_ticks: p.rewind_ticks,
        }
    }

    /// Whether every float is finite (the codec refuses anything else).
    pub fn is_finite(&self) -> bool {
        self.position_m.iter().chain(&self.velocity_mps).all(|v| v.is_finite())
    }

    /// The projectile (the simulation checks it again when it takes it).
    pub fn projectile(&self) -> pwn_sim::Projectile {
        pwn_sim::Projectile {
            id: pwn_sim::EntityId(self.id),
            owner: pwn_sim::EntityId(self.owner),
            position_m: self.position_m.into(),
            velocity_mps: self.velocity_mps.into(),
            ticks_left: self.ticks_left,
            damage: self.damage,
            rewind_ticks: self.rewind_ticks.min(pwn_sim::lagcomp::REWIND_TICKS_MAX as u8),
        }
    }
}

/// Zone to zone: a projectile of the sender flew into a cell the receiver serves; the sender
/// no longer simulates it, the receiver flies it on from its state at `tick`.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq)]
pub struct HandoffProjectile {
    /// The world tick of the state.
    pub tick: u64,
    /// The projectile.
    pub projectile: WireProjectile,
}

/// Zone to zone: a shot fired or a hit near the border, for the receiver's players within its
/// interest radius of `position_m` (their clients fly and end projectiles from these events).
/// Only `Fired` and `Hit` events cross.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct BorderEvent {
    /// Where it happened.
    pub position_m: [f32; 3],
    /// The event.
    pub event: crate::messages::GameEvent,
}

/// A crate's whole motion state, exact.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq, Default)]
pub struct WireCrate {
    /// Its id (the world-description range).
    pub id: u64,
    /// Position.
    pub position_m: [f32; 3],
    /// Orientation quaternion (x, y, z, w).
    pub rotation: [f32; 4],
    /// Linear velocity.
    pub linvel_mps: [f32; 3],
    /// Angular velocity.
    pub angvel_rps: [f32; 3],
}

impl WireCrate {
    /// Whether every float is finite (the codec refuses anything else).
    pub fn is_finite(&self) -> bool {
        self.position_m
            .iter()
            .chain(&self.rotation)
            .chain(&self.linvel_mps)
            .chain(&self.angvel_rps)
            .all(|v| v.is_finite())
    }
}

/// Zone to zone, every tick: the crates the sender owns near the receiver's cells, held there
/// as kinematic ghosts. Like `Ghosts`, a tick's crates may take several messages, the last one
/// `complete`; crate ghosts of the sender not named are released.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct CrateGhosts {
    /// The world tick of these states.
    pub tick: u64,
    /// Whether this is the tick's last message.
    pub complete: bool,
    /// At most `CRATE_GHOSTS_PER_MESSAGE_MAX`.
    pub crates: Vec<WireCrate>,
}

/// Zone to zone, after the store committed it: the crate is now the receiver's, in this state
/// at `tick`.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq)]
pub struct HandoffCrate {
    /// The world tick of the state.
    pub tick: u64,
    /// The cell that gave it.
    pub from_cell: WireCell,
    /// The cell that took it.
    pub to_cell: WireCell,
    /// The taking cell's lease epoch the handoff was fenced by.
    pub to_epoch: u64,
    /// The crate.
    pub state: WireCrate,
}

/// Most objects in one `ObjectGhosts` message.
pub const OBJECT_GHOSTS_PER_MESSAGE_MAX: usize = 512;

/// One world object as a neighbour holds it (pwn-zone-node `[zobj-6]`).
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq)]
pub struct WireObject {
    /// Its id (the object range; the kind in its low bits).
    pub id: u64,
    /// Its state.
    pub state: u16,
    /// The store's version of it; a ghost only moves forward.
    pub version: u64,
    /// Removed (the pose is then meaningless).
    pub removed: bool,
    /// Centre.
    pub position_m: [f32; 3],
    /// Orientation quaternion (x, y, z, w).
    pub rotation: [f32; 4],
}

impl WireObject {
    /// Whether every float is finite (the codec refuses anything else).
    pub fn is_finite(&self) -> bool {
        self.position_m.iter().chain(&self.rotation).all(|v| v.is_finite())
    }
}

/// Zone to zone: world objects of the sender's cells within the ghost margin of the receiver's,
/// held there read-only (players see them and collide with them). Sent when an edit near a
/// border commits (`full` false: just those), and every few seconds in full (`full` true, over
/// as many messages as it takes, the last one `last`): ghosts of the sender a full listing does
/// not name are released.
#[derive(Readable, Writable, Clone, Debug, PartialEq)]
pub struct ObjectGhosts {
    /// A full listing of the sender's objects near the receiver.
    pub full: bool,
    /// The listing's first message (an earlier listing cut short is forgotten).
    pub first: bool,
    /// The listing's last message.
    pub last: bool,
    /// At most `OBJECT_GHOSTS_PER_MESSAGE_MAX`.
    pub objects: Vec<WireObject>,
}

/// Zone to zone, after the store committed it (pwn-zone-node `[zobj-7]`): a dynamic object the
/// sender simulated moved into the receiver's cell and is the receiver's now, in this state.
#[derive(Readable, Writable, Copy, Clone, Debug, PartialEq)]
pub struct HandoffObject {
    /// The object as it left (its version the one the store now holds).
    pub object: WireObject,
    /// The player who placed it.
    pub owner: u64,
    /// Linear velocity.
    pub linvel_mps: [f32; 3],
    /// Angular velocity.
    pub angvel_rps: [f32; 3],
    /// The taking cell.
    pub to_cell: WireCell,
    /// The taking cell's lease epoch the handoff was fenced by.
    pub to_epoch: u64,
}

impl HandoffObject {
    /// Whether every float is finite.
    pub fn is_finite(&self) -> bool {
        self.object.is_finite() && self.linvel_mps.iter().chain(&self.angvel_rps).all(|v| v.is_finite())
    }
}
