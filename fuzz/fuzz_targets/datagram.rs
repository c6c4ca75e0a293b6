//! Datagrams: any bytes decode to a message or a typed violation, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = pwn_proto::decode_datagram(data)
        && let Ok(again) = pwn_proto::encode_datagram(&message)
    {
        assert_eq!(pwn_proto::decode_datagram(&again).expect("re-encoded datagram decodes"), message);
    }
});
