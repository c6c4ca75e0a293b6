//! Stream frames: any bytes must decode to a message or a typed error, never panic, and a
//! decoded message must re-encode to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((message, used)) = pwn_proto::decode_frame(data) {
        assert!(used <= data.len());
        let again = pwn_proto::encode_frame(&message).expect("a decoded message is within bounds");
        assert_eq!(pwn_proto::decode_frame(&again).expect("re-encoded frame decodes").0, message);
    }
});
