//! pwn-gateway: the players' only endpoint.
//!
//! # Layout
//! - [`rules`]: usernames, passwords, argon2id hashing with OWASP's parameters, token hashes.
//! - [`accounts`]: accounts and sessions in the store (register, login with one session per
//!   account, resume, logout, admin changes).
//! - [`limits`]: governor rate limiters: per source address and global on authentication
//!   attempts, per connection on game messages.
//! - [`auth`]: authentication as a tower service, with the rate limits as a tower layer in
//!   front of it.
//! - [`pool`]: the bounded pool password hashing runs on, so a flood of logins can exhaust
//!   neither memory nor the threads that carry game traffic.
//! - [`throttle`]: failed logins against one account slow further attempts on it down,
//!   progressively (no lockout).
//! - [`server`]: authentication over the game connection (register, login, resume, logout),
//!   rate limited, one session per account and per connection.
//! - [`proxy`]: links to zone nodes, players multiplexed over them, switching a player's zone
//!   under the same client connection.
//!
//! Players' state is saved by the zone holding them (`pwn_zone_node::persist`). Gateways link
//! to zones with mutual TLS (the service certificate, `pwn_net::tls::service_cert`) and prove
//! the service key inside. In a partitioned world the world server says which zone each player
//! goes to (`server::Placement::World`).

pub mod accounts;
pub mod auth;
pub mod limits;
pub mod pool;
pub mod proxy;
pub mod rules;
pub mod server;
pub mod throttle;
