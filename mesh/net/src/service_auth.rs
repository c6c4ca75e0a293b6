//! Services proving to each other that they belong to one deployment: inside TLS (which the
//! accepting side's mutual TLS already restricted to holders of a service certificate), the
//! connecting service sends the deployment's 32-byte service key first on its control stream
//! (`ServiceAuth`), and the accepting service compares it in constant time before taking any
//! other message. Gateway-to-zone, zone-to-zone and service-to-world-server links all open so.

use crate::conn::{ConnTx, StreamRx};
use crate::error::ConnError;
use pwn_proto::{Message, RefuseCode, ServiceAuth};
use std::time::Duration;

/// How long a connecting service may take to prove the key.
pub const SERVICE_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Compares keys in time independent of where they differ.
pub fn keys_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Compares two 32-byte hashes in constant time (the same comparison as [`keys_match`]).
pub fn hashes_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    keys_match(a, b)
}

/// The connecting side: proves `key`.
pub async fn prove(tx: &ConnTx, key: [u8; 32]) -> Result<(), ConnError> {
    tx.send(&Message::ServiceAuth(ServiceAuth { key })).await
}

/// The accepting side: waits for the proof and checks it against `expected` (no key means no
/// service may link). A link without it is refused with a reason and `false` is returned.
pub async fn expect(tx: &ConnTx, rx: &mut StreamRx, expected: Option<[u8; 32]>) -> bool {
    let proof = match tokio::time::timeout(SERVICE_AUTH_TIMEOUT, rx.recv()).await {
        Ok(Ok(Some(Message::ServiceAuth(a)))) => Some(a.key),
        _ => None,
    };
    let proven = match (proof, expected) {
        (Some(given), Some(expected)) => keys_match(&given, &expected),
        _ => false,
    };
    if !proven {
        tx.refuse(RefuseCode::ProtocolViolation, "services must prove the deployment's service key".into()).await;
    }
    proven
}
