//! Codec properties: every message round-trips; arbitrary bytes never panic; frames arriving
//! in pieces report "incomplete" until whole; oversized and unknown frames are violations
//! detected from the header alone.

mod common;

use proptest::prelude::*;
use pwn_proto::codec::{FRAME_SIZE_MAX, decode};
use pwn_proto::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips_as_a_frame_and_as_a_datagram(m in common::message()) {
        let frame = encode_frame(&m).unwrap();
        let (back, used) = decode_frame(&frame).unwrap();
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(&back, &m);
        if let Ok(d) = encode_datagram(&m) {
            prop_assert_eq!(decode_datagram(&d).unwrap(), m);
        }
    }

    #[test]
    fn a_frame_in_pieces_is_incomplete_until_whole(m in common::message(), cut in 0usize..100_000) {
        let frame = encode_frame(&m).unwrap();
        let cut = cut % frame.len();
        match decode_frame(&frame[..cut]) {
            Err(DecodeError::Incomplete { needed }) => prop_assert!(needed > 0 && cut + needed <= frame.len()),
            other => prop_assert!(false, "prefix of {} of {} bytes gave {:?}", cut, frame.len(), other),
        }
        // Two frames back to back decode one after the other.
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let (_, used) = decode_frame(&two).unwrap();
        prop_assert_eq!(decode_frame(&two[used..]).unwrap().0, m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_frame(&bytes);
        let _ = decode_datagram(&bytes);
        let _ = decode(&bytes);
    }

    #[test]
    fn corrupting_a_valid_message_never_panics(m in common::message(), at in any::<usize>(), byte in any::<u8>()) {
        let mut frame = encode_frame(&m).unwrap();
        let i = at % frame.len();
        frame[i] = byte;
        let _ = decode_frame(&frame);
    }

    #[test]
    fn quantized_inputs_are_stable(seq in any::<u32>(), mx in -2.0f32..2.0, mz in -2.0f32..2.0, yaw in -7.0f32..7.0, pitch in -2.0f32..2.0, b in any::<u8>()) {
        let i = pwn_sim::PlayerInput { seq: pwn_sim::InputSeq(seq), move_x: mx, move_z: mz, yaw_rad: yaw, pitch_rad: pitch, buttons: pwn_sim::Buttons(b), view_tick: 0 };
        let once = WireInput::from_input(&i).to_input();
        // What the client predicts with is exactly what the server applies.
        prop_assert_eq!(WireInput::from_input(&once).to_input(), once);
    }
}

#[test]
fn oversized_and_unknown_frames_are_violations_from_the_header_alone() {
    let huge = ((FRAME_SIZE_MAX + 1) as u32).to_le_bytes();
    assert!(matches!(decode_frame(&huge), Err(DecodeError::Violation(Violation::FrameTooLarge { .. }))));
    // A Ping (kind 40) may be 17 bytes; claiming 1,000 is refused before the body arrives.
    let mut fat_ping = 1000u32.to_le_bytes().to_vec();
    fat_ping.push(40);
    assert!(matches!(
        decode_frame(&fat_ping),
        Err(DecodeError::Violation(Violation::MessageTooLarge { kind: 40, .. }))
    ));
    let mut unknown = 5u32.to_le_bytes().to_vec();
    unknown.push(200);
    assert!(matches!(decode_frame(&unknown), Err(DecodeError::Violation(Violation::UnknownKind(200)))));
    assert!(matches!(decode_frame(&0u32.to_le_bytes()), Err(DecodeError::Violation(Violation::Empty))));
}

#[test]
fn out_of_range_fields_are_refused_both_ways() {
    let too_many = Message::Inputs(InputBatch {
        ack_tick: 0,
        inputs: vec![WireInput::default(); codec::INPUT_REDUNDANCY_MAX + 1],
    });
    assert!(encode_frame(&too_many).is_err(), "we must never send what the peer would refuse");
    // Hand-build the same message to check the decoder refuses it too.
    use speedy::Writable;
    let body = too_many.write_to_vec().unwrap();
    assert!(decode(&body).is_err());
    let empty = Message::Inputs(InputBatch { ack_tick: 0, inputs: vec![] }).write_to_vec().unwrap();
    assert!(matches!(decode(&empty), Err(Violation::OutOfRange { field: "inputs", .. })));
    let long_name = Message::Hello(Hello {
        protocol_version: 1,
        sim_digest: 0,
        role: PeerRole::Client,
        agent: "x".repeat(codec::NAME_LEN_MAX + 1),
    });
    assert!(encode_frame(&long_name).is_err());
    let item = ItemEntry { id: u64::MAX, kind: u32::MAX };
    let crowded = Message::Event(GameEvent::Inventory { items: vec![item; codec::INVENTORY_ITEMS_MAX + 1] });
    assert!(encode_frame(&crowded).is_err());
    assert!(matches!(
        decode(&crowded.write_to_vec().unwrap()),
        Err(Violation::OutOfRange { field: "event.items", .. })
    ));
}

/// A full inventory still travels to a player through a gateway: wrapped in `Routed`, inside
/// one datagram.
#[test]
fn a_full_inventory_fits_a_routed_datagram() {
    let item = ItemEntry { id: u64::MAX, kind: u32::MAX };
    let full = Message::Event(GameEvent::Inventory { items: vec![item; codec::INVENTORY_ITEMS_MAX] });
    let payload = encode_datagram(&full).unwrap();
    let routed = encode_datagram(&Message::Routed(Routed { player: u64::MAX, payload })).unwrap();
    assert!(routed.len() <= codec::DATAGRAM_SIZE_MAX);
    assert_eq!(decode_datagram(&routed).map(|m| matches!(m, Message::Routed(_))), Ok(true));
}

#[test]
fn credentials_and_tokens_never_print_their_secrets() {
    let c = Credentials { username: "ann".into(), password: "hunter22".into() };
    let t = SessionToken([7; 16]);
    let printed = format!("{c:?} {t:?} {:?}", Message::Login(c.clone()));
    assert!(!printed.contains("hunter22") && !printed.contains("7, 7"), "{printed}");
}

/// Character states cross zone links with their exact bits: a non-finite one (which no
/// simulation produces) is refused by the decoder, so a decoded message always re-encodes to
/// itself (the frame fuzzer found a `HandoffPlayer` carrying NaN, which does not equal itself).
#[test]
fn non_finite_character_states_and_positions_are_refused() {
    use pwn_proto::{BorderChat, GhostState, Ghosts, HandoffPlayer, WireCell, WireCharacter};
    use speedy::Writable;
    let mut c = WireCharacter::default();
    c.last_input.yaw_rad = f32::NAN;
    let cell = WireCell { level: 1, path: 0 };
    let handoff = Message::HandoffPlayer(HandoffPlayer {
        player: 1,
        tick: 1,
        from_cell: cell,
        to_cell: cell,
        to_epoch: 1,
        character: c,
        last_released: None,
        waiting: vec![],
    });
    let ghosts = Message::Ghosts(Ghosts {
        from_node: 1,
        tick: 1,
        complete: true,
        states: vec![GhostState {
            id: 1,
            character: WireCharacter { velocity_mps: [f32::INFINITY, 0.0, 0.0], ..WireCharacter::default() },
        }],
    });
    let chat = Message::BorderChat(BorderChat { from: 1, position_m: [f32::NAN, 0.0, 0.0], text: "hi".into() });
    for m in [handoff, ghosts, chat] {
        assert!(encode_frame(&m).is_err(), "{m:?}");
        assert!(matches!(decode(&m.write_to_vec().unwrap()), Err(Violation::OutOfRange { .. })), "{m:?}");
    }
}
