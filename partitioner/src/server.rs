//! The world server's async shell (`pwn world`): accepts zone nodes and gateways over pwn-net
//! (services only: mutual TLS with the service certificate, then the service key), answers
//! their calls from the pure core (`[world-6]`: only zone links register and beat, a node's
//! heartbeats prove the token its registration gave it, whose hash the store keeps, and at most
//! `NODES_MAX` nodes register), and every `POLL_INTERVAL` grants the cells that need an
//! owner, writing each grant to the store before anyone hears of it (`crate::core`
//! `[world-3]`). Its clock is its own monotonic time since it started; the world clock's start
//! lives in the store.

use crate::core::{WorldConfig, WorldCore, ZoneId};
use crate::persist::{StoredWorld, register_node, write_grant};
use crate::wire::{self, Bounded};
use pwn_net::NetServer;
use pwn_net::rpc::HandlerResult;
use pwn_proto::PeerRole;
use pwn_store::Store;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often cells without an owner are looked for.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Metric names of the world server.
pub mod metric {
    /// Registered nodes.
    pub const NODES: &str = "pwn_world_nodes";
    /// Cells served now.
    pub const CELLS_SERVED: &str = "pwn_world_cells_served";
    /// Leases granted (written to the store).
    pub const GRANTS: &str = "pwn_world_grants_total";
    /// Grants the store refused or failed.
    pub const GRANTS_FAILED: &str = "pwn_world_grants_failed_total";
    /// Calls refused as malformed or from unknown nodes.
    pub const CALLS_REFUSED: &str = "pwn_world_calls_refused_total";
}

/// What the world server needs besides its network.
#[derive(Clone, Debug)]
pub struct WorldServerConfig {
    /// Lease timing and placement.
    pub world: WorldConfig,
    /// Where players without a stored position enter the world (x, z).
    pub spawn_xz: [f32; 2],
    /// The deployment's service key (without one no service can link).
    pub service_key: Option<[u8; 32]>,
}

/// Zone nodes registered at most (a misbehaving service cannot register without end).
pub const NODES_MAX: usize = 4_096;

struct Shared {
    core: Mutex<WorldCore>,
    /// Each node's heartbeat token hash (`[world-6]`).
    tokens: Mutex<std::collections::HashMap<ZoneId, [u8; 32]>>,
    store: Store,
    start_unix_ms: u64,
    clock: Instant,
    spawn_xz: [f32; 2],
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn core(&self) -> std::sync::MutexGuard<'_, WorldCore> {
        // A panic while holding the lock would be a bug; the core's state is still consistent
        // (every method leaves it so), so go on with it.
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn refuse(code: u16, why: impl std::fmt::Display) -> (u16, String) {
    metrics::counter!(metric::CALLS_REFUSED).increment(1);
    (code, why.to_string())
}

fn body<T: for<'a> speedy::Readable<'a, speedy::LittleEndian> + Bounded>(b: &[u8]) -> Result<T, (u16, String)> {
    wire::decode(b).map_err(|e| refuse(wire::ERR_BAD_REQUEST, e))
}

async fn handle(shared: Arc<Shared>, role: PeerRole, method: u16, b: Vec<u8>) -> HandlerResult {
    // `[world-6]`: only zone nodes register and beat.
    if matches!(method, wire::METHOD_REGISTER | wire::METHOD_HEARTBEAT) && role != PeerRole::Zone {
        return Err(refuse(wire::ERR_FORBIDDEN, "only zone nodes register and beat"));
    }
    match method {
        wire::METHOD_REGISTER => {
            let req: wire::RegisterNode = body(&b)?;
            if req.addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(refuse(wire::ERR_BAD_REQUEST, format!("{:?} is not an address", req.addr)));
            }
            if shared.core().nodes().count() >= NODES_MAX {
                return Err(refuse(wire::ERR_FORBIDDEN, format!("{NODES_MAX} nodes are registered already")));
            }
            let mut token = [0u8; 16];
            getrandom::fill(&mut token).map_err(|e| refuse(wire::ERR_STORE, e))?;
            let store = shared.store.clone();
            let (addr, capacity) = (req.addr.clone(), req.capacity.max(1));
            let id = tokio::task::spawn_blocking(move || register_node(&store, &addr, capacity, &token))
                .await
                .map_err(|e| refuse(wire::ERR_STORE, e))?
                .map_err(|e| refuse(wire::ERR_STORE, e))?;
            if let Ok(mut tokens) = shared.tokens.lock() {
                tokens.insert(id, crate::persist::token_hash(&token));
            }
            let mut core = shared.core();
            core.register(id, req.addr.clone(), capacity, shared.now_ms()).map_err(|e| refuse(wire::ERR_STORE, e))?;
            tracing::info!(node = %id, addr = %req.addr, capacity, "zone node registered");
            metrics::gauge!(metric::NODES).set(core.nodes().count() as f64);
            let (origin_m, size_m) = core.tree().bounds();
            Ok(wire::encode(&wire::Registered {
                node: id.0,
                world_start_unix_ms: shared.start_unix_ms,
                origin_m,
                size_m,
                leaves: core.tree().leaves().map(wire::WireCell::from).collect(),
                token,
            }))
        }
        wire::METHOD_HEARTBEAT => {
            let req: wire::Heartbeat = body(&b)?;
            let known = shared.tokens.lock().ok().and_then(|t| t.get(&ZoneId(req.node)).copied());
            let proven =
                known.is_some_and(|h| pwn_net::service_auth::hashes_match(&h, &crate::persist::token_hash(&req.token)));
            if !proven {
                return Err(refuse(
                    wire::ERR_FORBIDDEN,
                    format!("no heartbeat for node {} without its token", req.node),
                ));
            }
            let now = shared.now_ms();
            let mut core = shared.core();
            let leases =
                core.heartbeat(ZoneId(req.node), req.load(), now).map_err(|e| refuse(wire::ERR_UNKNOWN_NODE, e))?;
            let owners = core.owners(now);
            Ok(wire::encode(&wire::HeartbeatAnswer {
                leases: leases
                    .iter()
                    .map(|l| wire::WireLease { cell: l.cell.into(), epoch: l.epoch.0, valid_for_ms: l.valid_for_ms })
                    .collect(),
                owners: owners.iter().map(wire::WireOwner::from).collect(),
            }))
        }
        wire::METHOD_ROUTE => {
            let req: wire::RoutePlayer = body(&b)?;
            let store = shared.store.clone();
            let spawn = shared.spawn_xz;
            let place = tokio::task::spawn_blocking(move || crate::route::where_player_is(&store, req.player, spawn))
                .await
                .map_err(|e| refuse(wire::ERR_STORE, e))?
                .map_err(|e| refuse(wire::ERR_STORE, e))?;
            let core = shared.core();
            let now = shared.now_ms();
            let owner = match place {
                crate::route::Place::Cell(cell) => core.owners(now).into_iter().find(|o| o.cell == cell),
                crate::route::Place::At(x, z) => core.route(x, z, now),
            };
            Ok(wire::encode(&wire::Routed { owner: owner.as_ref().map(wire::WireOwner::from) }))
        }
        wire::METHOD_OWNERS => {
            let owners = shared.core().owners(shared.now_ms());
            Ok(wire::encode(&wire::Owners { owners: owners.iter().map(wire::WireOwner::from).collect() }))
        }
        other => Err(refuse(wire::ERR_BAD_REQUEST, format!("unknown method {other}"))),
    }
}

/// Grants what needs an owner, each written to the store first (`[world-3]`).
async fn poll(shared: &Arc<Shared>) {
    let grants = shared.core().poll(shared.now_ms());
    for g in grants {
        let store = shared.store.clone();
        let written = tokio::task::spawn_blocking(move || write_grant(&store, &g)).await;
        match written {
            Ok(Ok(())) => {
                shared.core().confirm(&g);
                metrics::counter!(metric::GRANTS).increment(1);
                tracing::info!(cell = %g.cell, node = %g.node, epoch = g.epoch.0, "cell granted");
            }
            Ok(Err(e)) => {
                shared.core().abandon(&g);
                metrics::counter!(metric::GRANTS_FAILED).increment(1);
                tracing::warn!(cell = %g.cell, error = %e, "grant not written; the cell stays free");
            }
            Err(e) => {
                shared.core().abandon(&g);
                tracing::error!(error = %e, "grant task failed");
            }
        }
    }
    let served = shared.core().owners(shared.now_ms()).len();
    metrics::gauge!(metric::CELLS_SERVED).set(served as f64);
}

/// Runs the world server on `net` until `shutdown` completes, from the world the store holds.
pub async fn run(
    mut net: NetServer,
    store: Store,
    stored: StoredWorld,
    cfg: WorldServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let clock = Instant::now();
    let core = WorldCore::restore(cfg.world.clone(), stored.tree, stored.nodes, stored.leases, 0);
    let tokens = stored.token_hashes.iter().copied().collect();
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        tokens: Mutex::new(tokens),
        store,
        start_unix_ms: stored.start_unix_ms,
        clock,
        spawn_xz: cfg.spawn_xz,
    });
    let service_key = cfg.service_key;
    let accept_shared = shared.clone();
    let acceptor = tokio::spawn(async move {
        // Links live in this set, so stopping the acceptor closes every one of them (and with
        // them the endpoint: a restarted world server can bind the same address).
        let mut links = tokio::task::JoinSet::new();
        while let Some(incoming) = net.accept().await {
            while links.try_join_next().is_some() {}
            let shared = accept_shared.clone();
            links.spawn(async move {
                let Ok(conn) = incoming.handshake().await else { return };
                let pwn_net::Conn { tx, mut rx, streams, peer, .. } = conn;
                if !matches!(peer.role, PeerRole::Zone | PeerRole::Gateway) {
                    tx.refuse(pwn_proto::RefuseCode::ProtocolViolation, "the world server serves services only".into())
                        .await;
                    return;
                }
                if !pwn_net::service_auth::expect(&tx, &mut rx, service_key).await {
                    tracing::warn!(remote = %peer.remote, "refused a service without the service key");
                    return;
                }
                tracing::debug!(remote = %peer.remote, role = ?peer.role, "service linked");
                let (notify_tx, _notify_rx) = tokio::sync::mpsc::channel(1);
                let role = peer.role;
                let calls = tokio::spawn(pwn_net::rpc::serve(
                    streams,
                    move |method, body| handle(shared.clone(), role, method, body),
                    notify_tx,
                ));
                // The control stream carries nothing more; its end is the link's end.
                while let Ok(Some(_)) = rx.recv().await {}
                calls.abort();
            });
        }
    });
    let mut every = tokio::time::interval(POLL_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = every.tick() => poll(&shared).await,
        }
    }
    acceptor.abort();
}
