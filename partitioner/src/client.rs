//! Calling the world server from a zone node or a gateway: one link (re-made after it drops),
//! typed calls with a timeout, answers checked against their bounds.

use crate::core::CellOwner;
use crate::wire::{self, Bounded};
use pwn_net::rpc::{self, RpcCall};
use pwn_net::{ClientHello, NetClient};
use std::net::SocketAddr;
use std::time::Duration;
use tower::BoxError;
use tower::util::BoxCloneService;

/// How long a call may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorldCallError {
    /// The world server could not be reached (or the call timed out); the link is re-made on
    /// the next call.
    #[error("world server unreachable: {0}")]
    Unreachable(String),
    /// The world server answered with an error.
    #[error("world server refused: {code} {message}")]
    Refused {
        /// Its code (`wire::ERR_*`).
        code: u16,
        /// Its explanation.
        message: String,
    },
    /// The answer broke its bounds.
    #[error(transparent)]
    Malformed(#[from] wire::WireError),
}

type Stack = BoxCloneService<RpcCall, Vec<u8>, BoxError>;

/// A world server link.
pub struct WorldClient {
    net: NetClient,
    addr: SocketAddr,
    hello: ClientHello,
    service_key: [u8; 32],
    link: tokio::sync::Mutex<Option<(Stack, pwn_net::ConnTx)>>,
}

impl std::fmt::Debug for WorldClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldClient").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl WorldClient {
    /// A client of the world server at `addr`, linking with `net` (which presents the service
    /// certificate) as `hello` says and proving `service_key`. Links on the first call.
    pub fn new(net: NetClient, addr: SocketAddr, hello: ClientHello, service_key: [u8; 32]) -> Self {
        Self { net, addr, hello, service_key, link: tokio::sync::Mutex::new(None) }
    }

    async fn call<T: for<'a> speedy::Readable<'a, speedy::LittleEndian> + Bounded>(
        &self,
        method: u16,
        body: Vec<u8>,
        idempotent: bool,
    ) -> Result<T, WorldCallError> {
        let mut stack = {
            let mut link = self.link.lock().await;
            if link.is_none() {
                let conn = self
                    .net
                    .connect(self.addr, "localhost", &self.hello)
                    .await
                    .map_err(|e| WorldCallError::Unreachable(e.to_string()))?;
                pwn_net::service_auth::prove(&conn.tx, self.service_key)
                    .await
                    .map_err(|e| WorldCallError::Unreachable(e.to_string()))?;
                let stack = BoxCloneService::new(rpc::client(conn.tx.handle().clone(), CALL_TIMEOUT, 16));
                // The control stream's reader keeps the link open until it ends.
                let pwn_net::Conn { tx, mut rx, .. } = conn;
                tokio::spawn(async move { while let Ok(Some(_)) = rx.recv().await {} });
                *link = Some((stack, tx));
            }
            match link.as_ref() {
                Some((stack, _)) => stack.clone(),
                None => return Err(WorldCallError::Unreachable("no link".into())),
            }
        };
        let answer = rpc::call(&mut stack, RpcCall { method, body, idempotent }).await;
        match answer {
            Ok(bytes) => Ok(wire::decode(&bytes)?),
            Err(e) => match e.downcast_ref::<rpc::RpcError>() {
                Some(rpc::RpcError::Remote { code, message }) => {
                    Err(WorldCallError::Refused { code: *code, message: message.clone() })
                }
                _ => {
                    *self.link.lock().await = None;
                    Err(WorldCallError::Unreachable(e.to_string()))
                }
            },
        }
    }

    /// Registers a zone node reachable at `addr`.
    pub async fn register(&self, addr: &str, capacity: u32) -> Result<wire::Registered, WorldCallError> {
        let body = wire::encode(&wire::RegisterNode { addr: addr.to_owned(), capacity });
        // Not retried: a registration that timed out may have happened, and another would leave
        // a phantom node that could be granted cells.
        self.call(wire::METHOD_REGISTER, body, false).await
    }

    /// A node's heartbeat.
    pub async fn heartbeat(&self, beat: wire::Heartbeat) -> Result<wire::HeartbeatAnswer, WorldCallError> {
        self.call(wire::METHOD_HEARTBEAT, wire::encode(&beat), true).await
    }

    /// Where `player` belongs (`None`: its cell is not served now; try again shortly).
    pub async fn route(&self, player: u64) -> Result<Option<CellOwner>, WorldCallError> {
        let r: wire::Routed = self.call(wire::METHOD_ROUTE, wire::encode(&wire::RoutePlayer { player }), true).await?;
        Ok(r.owner.map(|o| o.owner()))
    }

    /// Who serves every cell.
    pub async fn owners(&self) -> Result<Vec<CellOwner>, WorldCallError> {
        let r: wire::Owners = self.call(wire::METHOD_OWNERS, Vec::new(), true).await?;
        Ok(r.owners.iter().map(wire::WireOwner::owner).collect())
    }
}
