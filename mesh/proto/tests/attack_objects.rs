//! Attacks on the world-object edit messages: every `EditOp` a client may send fits the size
//! limit of its kind and round-trips; hostile bytes never panic.

use pwn_proto::codec::decode;
use pwn_proto::*;

fn all_ops() -> Vec<EditOp> {
    vec![
        EditOp::Place { kind: u16::MAX, position: [i32::MIN, i32::MAX, i32::MIN], yaw: u16::MAX, state: u16::MAX },
        EditOp::Move { object: u64::MAX, position: [i32::MAX, i32::MIN, i32::MAX], yaw: u16::MAX },
        EditOp::SetState { object: u64::MAX, state: u16::MAX },
        EditOp::Remove { object: u64::MAX },
    ]
}

#[test]
fn every_edit_op_encodes_within_its_size_limit_and_round_trips() {
    for op in all_ops() {
        for request in [0, 1, u64::MAX] {
            let m = Message::EditObject(EditObject { request, op });
            let frame = encode_frame(&m).unwrap_or_else(|e| panic!("{op:?} cannot be sent: {e}"));
            let (back, used) = decode_frame(&frame).unwrap();
            assert_eq!(used, frame.len());
            assert_eq!(back, m);
        }
    }
}

#[test]
fn a_move_edit_can_be_sent_by_a_client() {
    let m = Message::EditObject(EditObject {
        request: 1_700_000_000_000_000,
        op: EditOp::Move { object: pwn_sim_object_id(), position: [1024, 2048, 4096], yaw: 0 },
    });
    let encoded = encode_frame(&m);
    assert!(encoded.is_ok(), "encoding a Move edit fails: {encoded:?}");
}

fn pwn_sim_object_id() -> u64 {
    // EntityId::object(1, 0): the first object of kind 0.
    (1u64 << 62) + (1u64 << 61) + (1u64 << 16)
}

#[test]
fn edit_done_event_round_trips_with_every_outcome() {
    for outcome in 0u8..=12 {
        let outcome = match outcome {
            0 => EditOutcome::Committed,
            1 => EditOutcome::OutOfReach,
            2 => EditOutcome::NotAllowed,
            3 => EditOutcome::Blocked,
            4 => EditOutcome::OutOfBounds,
            5 => EditOutcome::CellFull,
            6 => EditOutcome::PlayerFull,
            7 => EditOutcome::RateLimited,
            8 => EditOutcome::Busy,
            9 => EditOutcome::Stale,
            10 => EditOutcome::Missing,
            11 => EditOutcome::Invalid,
            _ => EditOutcome::StoreFailed,
        };
        let m = Message::Event(GameEvent::EditDone { request: u64::MAX, object: u64::MAX, outcome });
        let frame = encode_frame(&m).unwrap();
        assert_eq!(decode_frame(&frame).unwrap().0, m);
    }
}

#[test]
fn hostile_edit_bytes_never_panic() {
    // Every op tag and outcome tag, truncated at every length and with garbage after it.
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut body = vec![33u8];
        for _ in 0..len {
            body.push(next() as u8);
        }
        let _ = decode(&body);
    }
    for op_tag in 0u8..=255 {
        let mut body = vec![33u8];
        body.extend_from_slice(&7u64.to_le_bytes());
        body.push(op_tag);
        body.extend_from_slice(&[0xFF; 22]);
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
    }
}
