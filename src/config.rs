//! The `pwn` configuration file: one TOML document, every field defaulted, so `pwn` runs with
//! none. Flags given on the command line override what the file says.

use anyhow::Context;
use pwn_sim::{SimConfig, WorldDesc};
use pwn_store::StoreConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `pwn` reads from its configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PwnConfig {
    /// The shared simulation's parameters (`[sim]`, `[sim.character]`, `[sim.projectile]`).
    pub sim: SimConfig,
    /// The world description file; the built-in arena (`worlds/arena.toml`) when absent.
    pub world: Option<PathBuf>,
    /// Where persistent state lives (`[store]`): the embedded SQLite file by default.
    pub store: StoreConfig,
}

impl PwnConfig {
    /// Reads and validates the file, or returns the defaults when no file is named.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        let cfg: PwnConfig =
            toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
        cfg.sim.validate()?;
        Ok(cfg)
    }

    /// The world to simulate: `override_path`, else the configured file, else the arena.
    pub fn world(&self, override_path: Option<&Path>) -> anyhow::Result<WorldDesc> {
        match override_path.or(self.world.as_deref()) {
            Some(p) => Ok(WorldDesc::load(p)?),
            None => Ok(WorldDesc::arena()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_fill_in_defaults_and_unknown_fields_are_refused() {
        let cfg: PwnConfig = toml::from_str("[sim]\ntick_hz = 60\n[sim.character]\nrun_speed_mps = 9.0\n").unwrap();
        assert_eq!(cfg.sim.tick_hz, 60);
        assert_eq!(cfg.sim.character.run_speed_mps, 9.0);
        assert_eq!(cfg.sim.character.walk_speed_mps, SimConfig::default().character.walk_speed_mps);
        assert!(toml::from_str::<PwnConfig>("[sim]\ntick_rate = 60\n").is_err());
    }

    #[test]
    fn an_invalid_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("pwn-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[sim]\ntick_hz = 0\n").unwrap();
        let err = PwnConfig::load(Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("tick_hz"), "{err:#}");
        let missing = PwnConfig::load(Some(&dir.join("missing.toml"))).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read config file"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
