//! The baseline for `pwn bench sim`: the same world and the same inputs moved the way a
//! developer using rapier alone would do it: rapier's `KinematicCharacterController` on a
//! kinematic capsule per character, its collision impulses for pushed bodies, and a plain
//! physics step. No projectiles (so the baseline does strictly less work than pwn-sim).

use pwn_sim::{Buttons, PlayerInput, SimConfig, WorldDesc};
use rapier3d::control::{CharacterAutostep, CharacterCollision, CharacterLength, KinematicCharacterController};
use rapier3d::prelude::*;

struct BaselineCharacter {
    body: RigidBodyHandle,
    grounded: bool,
    vy: f32,
}

/// A rapier-only world moving characters with rapier's controller.
pub struct Baseline {
    physics: PhysicsWorld,
    controller: KinematicCharacterController,
    characters: Vec<BaselineCharacter>,
    cfg: SimConfig,
}

impl Baseline {
    /// Builds the same static geometry and crates as `desc` and one capsule per start position.
    pub fn new(desc: &WorldDesc, cfg: &SimConfig, starts: &[glam::Vec3]) -> Self {
        let mut physics = PhysicsWorld::new();
        physics.gravity = glam::Vec3::new(0.0, -cfg.gravity_mps2, 0.0);
        physics.integration_parameters.dt = cfg.dt_s();
        physics.insert(
            RigidBodyBuilder::fixed().translation(glam::Vec3::new(0.0, desc.ground_y_m, 0.0)),
            ColliderBuilder::new(SharedShape::halfspace(glam::Vec3::Y)),
        );
        for b in &desc.boxes {
            let r = b.rotation_deg;
            let rot =
                glam::Quat::from_euler(glam::EulerRot::XYZ, r[0].to_radians(), r[1].to_radians(), r[2].to_radians());
            let h = b.half_extents_m;
            physics.insert(
                RigidBodyBuilder::fixed().pose(Pose::from_parts(glam::Vec3::from(b.center_m), rot)),
                ColliderBuilder::cuboid(h[0], h[1], h[2]),
            );
        }
        for c in &desc.crates {
            let h = c.half_extents_m;
            physics.insert(
                RigidBodyBuilder::dynamic().translation(glam::Vec3::from(c.center_m)),
                ColliderBuilder::cuboid(h[0], h[1], h[2]).density(c.density_kgpm3),
            );
        }
        let ch = &cfg.character;
        let characters = starts
            .iter()
            .map(|p| {
                let (body, _) = physics.insert(
                    RigidBodyBuilder::kinematic_position_based().translation(*p),
                    ColliderBuilder::capsule_y(ch.half_height_m, ch.radius_m),
                );
                BaselineCharacter { body, grounded: false, vy: 0.0 }
            })
            .collect();
        physics.step();
        let controller = KinematicCharacterController {
            autostep: Some(CharacterAutostep {
                max_height: CharacterLength::Absolute(ch.step_height_m),
                min_width: CharacterLength::Absolute(ch.radius_m * 0.5),
                include_dynamic_bodies: false,
            }),
            max_slope_climb_angle: ch.max_slope_climb_deg.to_radians(),
            min_slope_slide_angle: ch.min_slope_slide_deg.to_radians(),
            ..KinematicCharacterController::default()
        };
        Self { physics, controller, characters, cfg: cfg.clone() }
    }

    /// One tick: every character with an input moves through rapier's controller, then one
    /// physics step. `inputs[i]` belongs to the i-th start position.
    pub fn step(&mut self, inputs: &[Option<PlayerInput>]) {
        let dt = self.cfg.dt_s();
        let c = &self.cfg.character;
        let shape = Capsule::new_y(c.half_height_m, c.radius_m);
        let mut collisions: Vec<CharacterCollision> = Vec::new();
        for (ch, input) in self.characters.iter_mut().zip(inputs) {
            let input = input.unwrap_or_default().sanitized();
            let speed = if input.buttons.has(Buttons::RUN) { c.run_speed_mps } else { c.walk_speed_mps };
            if ch.grounded && input.buttons.has(Buttons::JUMP) {
                ch.vy = c.jump_speed_mps;
            }
            ch.vy -= self.cfg.gravity_mps2 * dt;
            let desired = input.world_move() * speed * dt + glam::Vec3::Y * ch.vy * dt;
            let pose = *self.physics.bodies[ch.body].position();
            let filter = QueryFilter::default().exclude_rigid_body(ch.body);
            collisions.clear();
            let moved = {
                let query = self.physics.broad_phase.as_query_pipeline(
                    self.physics.narrow_phase.query_dispatcher(),
                    &self.physics.bodies,
                    &self.physics.colliders,
                    filter,
                );
                self.controller.move_shape(dt, &query, &shape, &pose, desired, |hit| collisions.push(hit))
            };
            if !collisions.is_empty() {
                let mut query = self.physics.broad_phase.as_query_pipeline_mut(
                    self.physics.narrow_phase.query_dispatcher(),
                    &mut self.physics.bodies,
                    &mut self.physics.colliders,
                    filter,
                );
                self.controller.solve_character_collision_impulses(
                    dt,
                    &mut query,
                    &shape,
                    c.mass_kg,
                    collisions.iter(),
                );
            }
            ch.grounded = moved.grounded;
            if ch.grounded && ch.vy < 0.0 {
                ch.vy = 0.0;
            }
            let next = pose.translation + moved.translation;
            self.physics.bodies[ch.body].set_next_kinematic_translation(next);
        }
        self.physics.step();
    }
}
