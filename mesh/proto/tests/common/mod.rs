//! Strategies for arbitrary valid messages, shared by the codec tests.
#![allow(dead_code)]

use proptest::prelude::*;
use pwn_proto::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max / 4).prop_map(|c| c.into_iter().collect())
}

fn role() -> impl Strategy<Value = PeerRole> {
    prop_oneof![
        Just(PeerRole::Client),
        Just(PeerRole::Gateway),
        Just(PeerRole::Zone),
        Just(PeerRole::World),
        Just(PeerRole::Tool)
    ]
}

fn wire_input() -> impl Strategy<Value = WireInput> {
    (any::<u32>(), any::<i8>(), any::<i8>(), any::<u16>(), any::<i16>(), any::<u8>(), any::<u64>()).prop_map(
        |(seq, move_x, move_z, yaw, pitch, buttons, view_tick)| WireInput {
            seq,
            move_x,
            move_z,
            yaw,
            pitch,
            buttons,
            view_tick,
        },
    )
}

fn update() -> impl Strategy<Value = EntityUpdate> {
    (
        any::<u64>(),
        proptest::option::of(any::<[i32; 3]>()),
        proptest::option::of(any::<[i16; 3]>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(id, position, velocity, yaw, rotation, health)| EntityUpdate {
            id,
            position,
            velocity,
            yaw,
            rotation,
            health,
        })
}

/// Any message that respects every bound.
pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u16>(), any::<u64>(), role(), text(codec::NAME_LEN_MAX))
            .prop_map(|(v, d, r, a)| Message::Hello(Hello { protocol_version: v, sim_digest: d, role: r, agent: a })),
        (any::<u16>(), any::<u64>(), any::<u16>()).prop_map(|(v, d, t)| Message::Welcome(Welcome {
            protocol_version: v,
            sim_digest: d,
            tick_hz: t
        })),
        text(codec::TEXT_LEN_MAX)
            .prop_map(|m| Message::Refused(Refused { code: RefuseCode::ProtocolViolation, message: m })),
        (text(codec::NAME_LEN_MAX), text(codec::PASSWORD_LEN_MAX))
            .prop_map(|(u, p)| Message::Login(Credentials { username: u, password: p })),
        any::<[u8; 16]>().prop_map(|t| Message::Resume(SessionToken(t))),
        Just(Message::Logout),
        (any::<u64>(), any::<[u8; 16]>())
            .prop_map(|(p, t)| Message::AuthOk(AuthOk { player_id: p, token: SessionToken(t) })),
        (any::<u64>(), proptest::collection::vec(wire_input(), 1..=codec::INPUT_REDUNDANCY_MAX))
            .prop_map(|(a, inputs)| Message::Inputs(InputBatch { ack_tick: a, inputs })),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(update(), 0..40),
            proptest::collection::vec(any::<u64>(), 0..20)
        )
            .prop_map(|(tick, baseline_tick, input_ack, mut entities, removed)| {
                entities.sort_by_key(|u| u.id);
                entities.dedup_by_key(|u| u.id);
                let updates = delta::pack(&delta::View::new(), &entities, delta::Motion::STILL);
                Message::Snapshot(Snapshot {
                    tick,
                    baseline_tick,
                    input_ack,
                    input_backlog: (tick % 5) as u8,
                    updates,
                    removed,
                })
            }),
        any::<u64>().prop_map(|t| Message::SnapshotAck(SnapshotAck { tick: t })),
        (any::<u64>(), text(codec::TEXT_LEN_MAX)).prop_map(|(f, t)| Message::Event(GameEvent::Chat {
            from: f,
            channel: ChatChannel::Zone,
            text: t
        })),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u16>()).prop_map(|(p, s, t, d)| Message::Event(
            GameEvent::Hit { projectile: p, shooter: s, target: t, damage: d }
        )),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<[i32; 3]>(), any::<[i16; 3]>()).prop_map(
            |(projectile, owner, tick, position, velocity)| Message::Event(GameEvent::Fired {
                projectile,
                owner,
                tick,
                position,
                velocity
            })
        ),
        proptest::collection::vec((any::<u64>(), any::<u32>()), 0..=codec::INVENTORY_ITEMS_MAX).prop_map(|items| {
            Message::Event(GameEvent::Inventory {
                items: items.into_iter().map(|(id, kind)| ItemEntry { id, kind }).collect(),
            })
        }),
        (any::<u64>(), any::<u32>(), any::<u64>(), any::<u64>())
            .prop_map(|(item, kind, from, to)| Message::Event(GameEvent::ItemMoved { item, kind, from, to })),
        (any::<u64>(), any::<u64>()).prop_map(|(item, to)| Message::GiveItem(GiveItem { item, to })),
        (any::<u64>(), any::<[i32; 3]>())
            .prop_map(|(entity, position)| Message::Event(GameEvent::Spawned { entity, position })),
        text(codec::TEXT_LEN_MAX).prop_map(|t| Message::Chat(ChatSend { channel: ChatChannel::Proximity, text: t })),
        (any::<u64>(), any::<u64>()).prop_map(|(s, t)| Message::Ping(Ping { seq: s, sent_us: t })),
        (any::<u64>(), any::<bool>()).prop_map(|(p, h)| Message::Attach(Attach { player: p, handoff: h })),
        any::<[u8; 32]>().prop_map(|key| Message::ServiceAuth(ServiceAuth { key })),
        any::<u64>().prop_map(|p| Message::Detach(Detach { player: p })),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..1000))
            .prop_map(|(player, payload)| Message::Routed(Routed { player, payload })),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..2000))
            .prop_map(|(m, b)| Message::RpcRequest(RpcRequest { method: m, body: b })),
        proptest::collection::vec(any::<u8>(), 0..2000).prop_map(|b| Message::RpcResponse(RpcResponse::Ok(b))),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..2000))
            .prop_map(|(t, b)| Message::Notify(Notify { topic: t, body: b })),
    ]
}
