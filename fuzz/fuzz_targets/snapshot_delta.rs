//! Snapshots from the network applied to a client's view: a hostile snapshot is refused or
//! applied, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pwn_proto::delta::{EntityState, View, apply, unpack};

fuzz_target!(|data: &[u8]| {
    if let Ok(pwn_proto::Message::Snapshot(s)) = pwn_proto::decode_datagram(data) {
        let mut baseline = View::new();
        for id in 0..8u64 {
            baseline.insert(id, EntityState { id, ..EntityState::default() });
        }
        if let Ok(updates) = unpack(&baseline, &s.updates) {
            let _ = apply(&baseline, &updates, &s.removed);
        }
    }
});
