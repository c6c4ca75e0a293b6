//! How one service of a local deployment reaches the others: a QUIC client endpoint that trusts
//! the deployment's CA and presents the services' certificate (zones behind gateways, the world
//! server and zone-to-zone links admit nothing else), and a world server client on it.

use pwn_net::{NetClient, TransportConfig};
use std::net::SocketAddr;
use std::path::Path;

/// A client endpoint for links to other services, from the data folder's CA and certificate.
pub fn client(data: &Path) -> anyhow::Result<NetClient> {
    Ok(NetClient::with_identity(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &pwn_net::tls::dev_ca_cert(data)?,
        Some(&pwn_net::tls::service_cert(data)?),
        &TransportConfig::default(),
    )?)
}

/// A client of the world server at `addr`, speaking as `role` and proving the service key.
pub fn world_client(
    data: &Path,
    addr: SocketAddr,
    hello: pwn_net::ClientHello,
) -> anyhow::Result<pwn_partitioner::client::WorldClient> {
    Ok(pwn_partitioner::client::WorldClient::new(client(data)?, addr, hello, pwn_net::tls::service_key(data)?))
}
