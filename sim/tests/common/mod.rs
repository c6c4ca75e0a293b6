//! Helpers shared by the simulation's integration tests.
#![allow(dead_code)]

use pwn_sim::{BoxDesc, CharacterState, EntityId, InputSeq, PlayerInput, Sim, SimConfig, WorldDesc};
use std::collections::BTreeMap;

/// A flat 200 m world plus the given static boxes.
pub fn world_with(boxes: Vec<BoxDesc>) -> WorldDesc {
    let mut w = WorldDesc::flat(200.0);
    w.boxes = boxes;
    w
}

/// A static box without rotation.
pub fn block(center: [f32; 3], half: [f32; 3]) -> BoxDesc {
    BoxDesc { center_m: center, half_extents_m: half, rotation_deg: [0.0; 3] }
}

/// A sim over `desc` with default config.
pub fn sim(desc: WorldDesc) -> Sim {
    Sim::new(desc, SimConfig::default(), 7).expect("valid world")
}

/// Puts a character standing at (x, z), centre at capsule height.
pub fn place(sim: &mut Sim, id: u64, x: f32, z: f32) -> EntityId {
    let c = &sim.config().character;
    let y = c.half_height_m + c.radius_m + 0.05;
    let state = CharacterState::spawned_at(glam::Vec3::new(x, y, z), sim.config());
    sim.insert_character(EntityId(id), state).expect("insert");
    EntityId(id)
}

/// An input with the given sequence number, forward/strafe and buttons, facing +Z.
pub fn input(seq: u32, move_x: f32, move_z: f32, buttons: u8) -> PlayerInput {
    PlayerInput {
        seq: InputSeq(seq),
        move_x,
        move_z,
        yaw_rad: 0.0,
        pitch_rad: 0.0,
        buttons: pwn_sim::Buttons(buttons),
        view_tick: 0,
    }
}

/// Steps with one input for one character.
pub fn step_one(sim: &mut Sim, id: EntityId, i: PlayerInput) -> pwn_sim::StepReport {
    let mut m = BTreeMap::new();
    m.insert(id, i);
    sim.step(&m)
}

/// Steps `ticks` times with a generator of inputs; returns the positions after each tick.
pub fn run(
    sim: &mut Sim,
    id: EntityId,
    first_seq: u32,
    ticks: u32,
    mut f: impl FnMut(u32) -> PlayerInput,
) -> Vec<glam::Vec3> {
    let mut out = Vec::new();
    for t in 0..ticks {
        let mut i = f(t);
        i.seq = InputSeq(first_seq + t);
        step_one(sim, id, i);
        out.push(sim.character(id).unwrap().position_m);
    }
    out
}
