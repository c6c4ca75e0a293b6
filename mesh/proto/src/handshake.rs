//! The handshake rules, as pure functions: the connecting side sends [`Hello`]; the accepting
//! side answers [`Welcome`] or [`Refused`] (then closes). Rules (ids used by the tests):
//! - `[hs-1]` the first message on a connection's control stream must be `Hello`, from the
//!   connecting side; anything else is a protocol violation;
//! - `[hs-2]` a different protocol version is refused with `VersionMismatch`, and the message
//!   names both versions;
//! - `[hs-3]` a different simulation digest is refused with `SimMismatch`, whatever the peer's
//!   role: a client would predict wrongly, a zone would ghost and hand over players it
//!   simulates differently, a gateway would admit clients against the wrong digest, and a tool
//!   is held to the same rule so that no role is a way around it;
//! - `[hs-4]` nothing else is accepted on the connection before the handshake completes.

use crate::codec::PROTOCOL_VERSION;
use crate::messages::{Hello, RefuseCode, Refused, Welcome};

/// The accepting side's decision on a `Hello`.
pub fn answer_hello(hello: &Hello, our_sim_digest: u64, tick_hz: u16) -> Result<Welcome, Refused> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(Refused {
            code: RefuseCode::VersionMismatch,
            message: format!(
                "protocol version mismatch: you speak version {}, this server speaks version {}; update your client",
                hello.protocol_version, PROTOCOL_VERSION
            ),
        });
    }
    if hello.sim_digest != our_sim_digest {
        return Err(Refused {
            code: RefuseCode::SimMismatch,
            message: format!(
                "simulation mismatch: your build or parameters ({:016x}) differ from the server's ({:016x}); prediction would be wrong",
                hello.sim_digest, our_sim_digest
            ),
        });
    }
    Ok(Welcome { protocol_version: PROTOCOL_VERSION, sim_digest: our_sim_digest, tick_hz })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::PeerRole;

    fn hello(version: u16, digest: u64, role: PeerRole) -> Hello {
        Hello { protocol_version: version, sim_digest: digest, role, agent: "test".into() }
    }

    #[test]
    fn hs_2_version_mismatch_names_both_versions() {
        let r = answer_hello(&hello(PROTOCOL_VERSION + 1, 7, PeerRole::Client), 7, 30).unwrap_err();
        assert_eq!(r.code, RefuseCode::VersionMismatch);
        assert!(
            r.message.contains(&(PROTOCOL_VERSION + 1).to_string())
                && r.message.contains(&PROTOCOL_VERSION.to_string())
        );
    }

    #[test]
    fn hs_3_sim_mismatch_refuses_every_role() {
        for role in [PeerRole::Client, PeerRole::Gateway, PeerRole::Zone, PeerRole::World, PeerRole::Tool] {
            let refused = answer_hello(&hello(PROTOCOL_VERSION, 1, role), 2, 30).unwrap_err();
            assert_eq!(refused.code, RefuseCode::SimMismatch, "{role:?}");
        }
        let w = answer_hello(&hello(PROTOCOL_VERSION, 2, PeerRole::Client), 2, 30).unwrap();
        assert_eq!((w.protocol_version, w.sim_digest, w.tick_hz), (PROTOCOL_VERSION, 2, 30));
    }
}
