//! Snapshots from the network applied to a client's view: a hostile snapshot is refused or
//! applied, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pwn_proto::delta::{EntityState, Motion, View, apply, unpack};

fuzz_target!(|data: &[u8]| {
    if let Ok(pwn_proto::Message::Snapshot(s)) = pwn_proto::decode_datagram(data) {
        let mut baseline = View::new();
        for id in 0..8u64 {
            // Moving entities, so the extrapolation of [delta-6] is exercised too.
            let velocity = [i16::MAX, i16::MIN, id as i16];
            baseline.insert(id, EntityState { id, position: [i32::MAX, i32::MIN, 0], velocity, ..EntityState::default() });
        }
        if let Ok(updates) = unpack(&baseline, &s.updates, Motion::between(1, s.tick, 30)) {
            let _ = apply(&baseline, &updates, &s.removed);
        }
    }
});
