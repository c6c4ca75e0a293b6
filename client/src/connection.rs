//! The client's thin async shell: one QUIC connection (pwn-net) to the server, read by two
//! background tasks into one bounded inbox, and a synchronous [`Client::update`] the game loop
//! calls once per frame. Everything that decides anything lives in [`GameClient`].
//!
//! Headless use (bots, tests) is the same API driven by a timer instead of a renderer.
//!
//! `[conn-1]` a client can condition its own datagrams both ways with pwn-net's link
//! conditioner (`JoinOptions::link`), so a swarm on loopback can play over a bad link; reliable
//! messages ride QUIC's retransmission and are not conditioned.

use crate::counters::ClientCounters;
use crate::game::{Frame, GameClient, Intent};
use pwn_net::conditioner::{LinkProfile, spawn_conditioned_pipe};
use pwn_net::{ClientHello, Conn, ConnError, ConnTx, NetClient};
use pwn_proto::{ChatChannel, ChatSend, GameEvent, GiveItem, Message, PeerRole};
use pwn_sim::{EntityId, SimConfig, WorldDesc};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages waiting between the network tasks and the next `update`; datagrams past this are
/// dropped (counted as dropped snapshots by the server's next full state), events wait.
pub const INBOX_MAX: usize = 1_024;

/// Why a client could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The connection or handshake failed (refusals included, with the server's reason).
    #[error(transparent)]
    Connection(#[from] ConnError),
    /// The server accepted the connection but never placed the player.
    #[error("the server did not place the player within {0:?}")]
    NotPlaced(Duration),
    /// The connection ended before the player was placed.
    #[error("the connection ended before the player was placed")]
    Ended,
    /// The gateway refused the credentials or the session.
    #[error("login refused ({0:?}): {1}")]
    Auth(pwn_proto::AuthError, String),
}

/// How a client authenticates with a gateway before joining.
#[derive(Clone, Debug)]
pub enum Login {
    /// Log in to an existing account.
    Login(pwn_proto::Credentials),
    /// Create the account and log in.
    Register(pwn_proto::Credentials),
    /// Log in, creating the account first if the login fails (bots on their first run).
    LoginOrRegister(pwn_proto::Credentials),
    /// Resume a session.
    Resume(pwn_proto::SessionToken),
}

enum Incoming {
    Message(Instant, Message),
    Ended(String),
}

/// A connected player.
pub struct Client {
    core: GameClient,
    tx: ConnTx,
    inbox: mpsc::Receiver<Incoming>,
    last_update: Instant,
    ended: Option<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Outgoing datagrams through the link conditioner, when one is set.
    up: Option<mpsc::Sender<Message>>,
    /// The gateway session, when the client logged in.
    session: Option<pwn_proto::AuthOk>,
}

/// Sends a login request and waits for the answer (registering first when asked to).
async fn authenticate(tx: &ConnTx, rx: &mut pwn_net::StreamRx, login: &Login) -> Result<pwn_proto::AuthOk, JoinError> {
    async fn ask(
        tx: &ConnTx,
        rx: &mut pwn_net::StreamRx,
        m: Message,
    ) -> Result<Result<pwn_proto::AuthOk, JoinError>, JoinError> {
        tx.send(&m).await?;
        loop {
            match rx.recv().await? {
                Some(Message::AuthOk(ok)) => return Ok(Ok(ok)),
                Some(Message::AuthFailed(f)) => return Ok(Err(JoinError::Auth(f.error, f.message))),
                Some(Message::Refused(r)) => {
                    return Err(JoinError::Connection(ConnError::Refused { code: r.code, message: r.message }));
                }
                Some(_) => {}
                None => return Err(JoinError::Ended),
            }
        }
    }
    match login {
        Login::Login(c) => ask(tx, rx, Message::Login(c.clone())).await?,
        Login::Register(c) => ask(tx, rx, Message::Register(c.clone())).await?,
        Login::Resume(t) => ask(tx, rx, Message::Resume(*t)).await?,
        Login::LoginOrRegister(c) => match ask(tx, rx, Message::Login(c.clone())).await? {
            Err(JoinError::Auth(pwn_proto::AuthError::InvalidCredentials, _)) => {
                ask(tx, rx, Message::Register(c.clone())).await?
            }
            other => other,
        },
    }
}

/// How a client joins.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// How long the server may take to place the player.
    pub timeout: Duration,
    /// Conditions this client's datagrams both ways (latency, jitter, loss) in process, for
    /// load tests of bad links on loopback (`[conn-1]`).
    pub link: Option<LinkProfile>,
    /// Seed of the conditioner.
    pub link_seed: u64,
    /// Authentication first (through a gateway); `None` for a zone that places players
    /// directly (development).
    pub login: Option<Login>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), link: None, link_seed: 1, login: None }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("core", &self.core).field("ended", &self.ended).finish()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Client {
    /// Connects to the server at `addr` (certificate checked for `server_name`), waits until it
    /// places the player, and starts the background readers. `world` and `cfg` must be the
    /// server's.
    pub async fn connect(
        net: &NetClient,
        addr: SocketAddr,
        server_name: &str,
        world: WorldDesc,
        cfg: SimConfig,
        agent: &str,
        options: &JoinOptions,
    ) -> Result<Self, JoinError> {
        let hello = ClientHello::new(PeerRole::Client, pwn_sim::build_digest(&cfg), agent);
        let conn = net.connect(addr, server_name, &hello).await?;
        Self::join(conn, world, cfg, options).await
    }

    /// Waits on an established connection until the server places the player.
    pub async fn join(conn: Conn, world: WorldDesc, cfg: SimConfig, options: &JoinOptions) -> Result<Self, JoinError> {
        Ok(Self::started(place(conn, options).await?, world, cfg, options))
    }
}

/// A player the server placed, on its connection's parts (for drivers that read the
/// connection themselves, such as cheap load-test bots; [`Client`] wraps one).
pub struct Placed {
    /// Sending.
    pub tx: ConnTx,
    /// The control stream.
    pub rx: pwn_net::StreamRx,
    /// Datagrams.
    pub datagrams: pwn_net::DatagramRx,
    /// The player's entity.
    pub me: EntityId,
    /// The gateway session, when the client logged in.
    pub session: Option<pwn_proto::AuthOk>,
}

/// Authenticates (when `options` say so) on an established connection and waits until the
/// server places the player.
pub async fn place(conn: Conn, options: &JoinOptions) -> Result<Placed, JoinError> {
    let join_timeout = options.timeout;
    let Conn { tx, mut rx, datagrams, .. } = conn;
    let session = match &options.login {
        Some(login) => Some(
            tokio::time::timeout(join_timeout, authenticate(&tx, &mut rx, login))
                .await
                .map_err(|_| JoinError::NotPlaced(join_timeout))??,
        ),
        None => None,
    };
    let placed = tokio::time::timeout(join_timeout, async {
        loop {
            match rx.recv().await {
                Ok(Some(Message::Event(GameEvent::Joined { entity, .. }))) => return Ok(EntityId(entity)),
                Ok(Some(Message::Refused(r))) => {
                    return Err(JoinError::Connection(ConnError::Refused { code: r.code, message: r.message }));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(JoinError::Ended),
                Err(e) => return Err(JoinError::Connection(e)),
            }
        }
    })
    .await
    .map_err(|_| JoinError::NotPlaced(join_timeout))??;
    Ok(Placed { tx, rx, datagrams, me: placed, session })
}

impl Client {
    /// A client for a player already placed on its connection ([`place`]): starts the
    /// background readers.
    pub fn started(placed: Placed, world: WorldDesc, cfg: SimConfig, options: &JoinOptions) -> Self {
        let Placed { tx, mut rx, mut datagrams, me, session } = placed;
        let (inbox_tx, inbox) = mpsc::channel(INBOX_MAX);
        let mut tasks = Vec::new();
        // With a link profile, datagrams both ways go through the conditioner ([conn-1]).
        let (down, up) = match &options.link {
            Some(link) => {
                let (down_in, mut down_out) = spawn_conditioned_pipe::<Message>(*link, options.link_seed, INBOX_MAX);
                let (up_in, mut up_out) =
                    spawn_conditioned_pipe::<Message>(*link, options.link_seed ^ 0x5eed, INBOX_MAX);
                let delivered = inbox_tx.clone();
                tasks.push(tokio::spawn(async move {
                    while let Some(m) = down_out.recv().await {
                        let _ = delivered.try_send(Incoming::Message(Instant::now(), m));
                    }
                }));
                let sender = tx.clone();
                tasks.push(tokio::spawn(async move {
                    while let Some(m) = up_out.recv().await {
                        let _ = sender.send_datagram(&m);
                    }
                }));
                (Some(down_in), Some(up_in))
            }
            None => (None, None),
        };
        let datagram_inbox = inbox_tx.clone();
        let datagram_reader = tokio::spawn(async move {
            loop {
                match datagrams.recv().await {
                    // A full inbox (or link) means the game loop is not keeping up: the newest
                    // snapshot will be applied against an acknowledged baseline anyway.
                    Ok(m) => match &down {
                        Some(link) => {
                            let _ = link.try_send(m);
                        }
                        None => {
                            let _ = datagram_inbox.try_send(Incoming::Message(Instant::now(), m));
                        }
                    },
                    Err(e) => {
                        let _ = datagram_inbox.send(Incoming::Ended(e.to_string())).await;
                        return;
                    }
                }
            }
        });
        let stream_reader = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Some(Message::Refused(r))) => {
                        let _ = inbox_tx.send(Incoming::Ended(format!("refused ({:?}): {}", r.code, r.message))).await;
                        return;
                    }
                    // Events are reliable: wait for room rather than drop.
                    Ok(Some(m)) => {
                        if inbox_tx.send(Incoming::Message(Instant::now(), m)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = inbox_tx.send(Incoming::Ended("the server closed the connection".into())).await;
                        return;
                    }
                    Err(e) => {
                        let _ = inbox_tx.send(Incoming::Ended(e.to_string())).await;
                        return;
                    }
                }
            }
        });
        let mut core = GameClient::new(world, cfg, me);
        core.mark_placed();
        tasks.extend([datagram_reader, stream_reader]);
        Self { session, core, tx, inbox, last_update: Instant::now(), ended: None, tasks, up }
    }

    /// The local player's entity id.
    pub fn me(&self) -> EntityId {
        self.core.me()
    }

    /// The core (read-only), for its clock and state.
    pub fn core(&self) -> &GameClient {
        &self.core
    }

    /// The gateway session (player id and token), when the client logged in.
    pub fn session(&self) -> Option<&pwn_proto::AuthOk> {
        self.session.as_ref()
    }

    /// Headless mode (pwn-client `[game-9]`): for bots and tools that draw nothing.
    pub fn set_headless(&mut self, headless: bool) {
        self.core.set_headless(headless);
    }

    /// Whether to predict the local player (pwn-client `[game-14]`); cheap bots do not.
    pub fn set_predict(&mut self, predict: bool) {
        self.core.set_predict(predict);
    }

    /// Why the connection ended, once it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Payload bytes received so far (without cloning the counters).
    pub fn bytes_in(&self) -> u64 {
        self.tx.stats().bytes_received()
    }

    /// The counters, with the connection's byte counts.
    pub fn counters(&self) -> ClientCounters {
        let mut c = self.core.counters().clone();
        c.bytes_in = self.tx.stats().bytes_received();
        c.bytes_out = self.tx.stats().bytes_sent();
        c
    }

    /// One frame of the game loop: applies what arrived, advances by `dt_s` with `intent`,
    /// sends what is due, and returns what to draw.
    pub fn update(&mut self, dt_s: f32, intent: &Intent) -> Frame {
        let now = Instant::now();
        let frame_start_s = self.core.now_s();
        while let Ok(incoming) = self.inbox.try_recv() {
            match incoming {
                Incoming::Message(at, m) => {
                    // Arrival on the core's clock: between the last frame and this one.
                    let since = at.saturating_duration_since(self.last_update).as_secs_f64();
                    self.core.on_message(frame_start_s + since.min(f64::from(dt_s.max(0.0))), m);
                }
                Incoming::Ended(why) => {
                    if self.ended.is_none() {
                        tracing::info!(player = %self.core.me(), reason = %why, "disconnected");
                        self.ended = Some(why);
                    }
                }
            }
        }
        self.last_update = now;
        let frame = self.core.update(dt_s, intent);
        if self.ended.is_none() {
            for m in self.core.drain_outbox() {
                // A full datagram queue drops the oldest (counted by pwn-net); a closed
                // connection is reported by the readers.
                match &self.up {
                    Some(link) => {
                        let _ = link.try_send(m);
                    }
                    None => {
                        let _ = self.tx.send_datagram(&m);
                    }
                }
            }
        } else {
            self.core.drain_outbox().for_each(drop);
        }
        frame
    }

    /// Sends a chat line (reliable).
    pub async fn chat(&self, channel: ChatChannel, text: impl Into<String>) -> Result<(), ConnError> {
        self.tx.send(&Message::Chat(ChatSend { channel, text: text.into() })).await
    }

    /// Hands one of the player's items to a player nearby (reliable). The zone answers with an
    /// `ItemMoved` event once the store committed it, or a `Notice` saying why not;
    /// [`GameClient::inventory`] follows the events.
    pub async fn give(&self, item: u64, to: u64) -> Result<(), ConnError> {
        self.tx.send(&Message::GiveItem(GiveItem { item, to })).await
    }

    /// Edits a world object (reliable): returns the request number. The zone answers with an
    /// `EditDone` event for that number once the store committed it, or with why not; players
    /// near the object see the change in the snapshots after the commit.
    pub async fn edit(&mut self, op: pwn_proto::EditOp) -> Result<u64, ConnError> {
        let wall_us =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let req = self.core.edit(op, wall_us);
        self.tx.send(&Message::EditObject(req)).await?;
        Ok(req.request)
    }

    /// Ends the gateway session (the server saves the player and revokes the token), and waits
    /// for the gateway to confirm, briefly.
    pub async fn logout(&mut self) {
        if self.tx.send(&Message::Logout).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(incoming)) = tokio::time::timeout_at(deadline, self.inbox.recv()).await {
            if let Incoming::Message(_, Message::Event(GameEvent::Notice { text })) = incoming
                && text == "logged out"
            {
                return;
            }
        }
    }

    /// Leaves cleanly: finishes the control stream so the server sees a graceful end.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.finish()).await;
    }
}
