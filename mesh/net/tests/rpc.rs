//! Service RPC over real QUIC: typed calls, remote errors, timeouts, retries only for
//! idempotent calls, the client's concurrency limit, and one-way notifications.

use pwn_net::rpc::{self, RpcCall, RpcError};
use pwn_net::{ClientHello, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::PeerRole;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ECHO: u16 = 1;
const FAIL: u16 = 2;
const SLOW: u16 = 3;
const HOLD: u16 = 4;

#[derive(Default)]
struct Counts {
    slow_calls: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

#[tokio::test]
async fn calls_errors_timeouts_retries_limits_and_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let tls = ServerTls::DevCa { dir: dir.path().to_path_buf() };
    let cfg = TransportConfig::default();
    let mut server = NetServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        &pwn_net::tls::server_cert(&tls).unwrap(),
        &cfg,
        ServiceIdentity { sim_digest: 1, tick_hz: 30 },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let (notify_tx, mut notify_rx) = tokio::sync::mpsc::channel(8);
    let server_counts = counts.clone();
    tokio::spawn(async move {
        let conn = server.accept().await.unwrap().handshake().await.unwrap();
        let c = server_counts;
        rpc::serve(
            conn.streams,
            move |method, body| {
                let c = c.clone();
                async move {
                    match method {
                        ECHO => Ok(body),
                        FAIL => Err((7, "no such player".to_string())),
                        SLOW => {
                            c.slow_calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            Ok(vec![])
                        }
                        HOLD => {
                            let now = c.running.fetch_add(1, Ordering::SeqCst) + 1;
                            c.peak.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            c.running.fetch_sub(1, Ordering::SeqCst);
                            Ok(vec![])
                        }
                        _ => Err((404, "unknown method".to_string())),
                    }
                }
            },
            notify_tx,
        )
        .await;
    });

    let client =
        NetClient::new("127.0.0.1:0".parse().unwrap(), &pwn_net::tls::dev_ca_cert(dir.path()).unwrap(), &cfg).unwrap();
    let conn = client.connect(addr, "localhost", &ClientHello::new(PeerRole::Tool, 1, "rpc-test")).await.unwrap();
    let mut stack = rpc::client(conn.tx.handle().clone(), Duration::from_millis(150), 2);

    let echoed =
        rpc::call(&mut stack, RpcCall { method: ECHO, body: b"hello".to_vec(), idempotent: true }).await.unwrap();
    assert_eq!(echoed, b"hello");

    let err = rpc::call(&mut stack, RpcCall { method: FAIL, body: vec![], idempotent: true }).await.unwrap_err();
    assert!(matches!(err.downcast_ref::<RpcError>(), Some(RpcError::Remote { code: 7, .. })), "{err:?}");

    // A non-idempotent call that times out is tried once...
    let err = rpc::call(&mut stack, RpcCall { method: SLOW, body: vec![], idempotent: false }).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(counts.slow_calls.load(Ordering::SeqCst), 1);
    // ...an idempotent one is retried up to the limit.
    let err = rpc::call(&mut stack, RpcCall { method: SLOW, body: vec![], idempotent: true }).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(counts.slow_calls.load(Ordering::SeqCst), 1 + 1 + rpc::RETRIES_MAX as usize);

    // The client never has more than its limit (2) of calls in flight.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut s = stack.clone();
            tokio::spawn(
                async move { rpc::call(&mut s, RpcCall { method: HOLD, body: vec![], idempotent: false }).await },
            )
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let peak = counts.peak.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "{peak} calls ran at once");

    rpc::RpcClient::new(conn.tx.handle().clone()).notify(9, b"player moved".to_vec()).await.unwrap();
    let n = notify_rx.recv().await.unwrap();
    assert_eq!((n.topic, n.body.as_slice()), (9, &b"player moved"[..]));
}
