//! A raw QUIC peer for the attack harness: s2n-quic directly (not `pwn_net`, not
//! `pwn-client`), so it can offer any ALPN, bind any loopback source address, skip the
//! handshake, and write bytes no well-behaved client would.

use bytes::Bytes;
use pwn_proto::{Hello, Message, PROTOCOL_VERSION, PeerRole};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long the attacker waits for any one answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// One client endpoint bound to a source address, offering one ALPN.
pub struct Raw {
    client: s2n_quic::Client,
    server: SocketAddr,
    server_name: String,
}

/// What came back on a stream.
#[derive(Debug)]
pub enum Answer {
    /// A whole message.
    Message(Message),
    /// The connection was closed with this application code (PWN's `RefuseCode`s).
    Closed(u64),
    /// The stream or connection ended otherwise (reset, idle, transport error).
    Ended(String),
    /// Nothing within [`ANSWER_WAIT`].
    Silent,
}

impl Raw {
    /// An endpoint on `local` (port chosen by the system) trusting `ca_pem`, offering `alpn`.
    pub fn new(local: IpAddr, ca_pem: &str, alpn: &str, server: SocketAddr, server_name: &str) -> Result<Self, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let tls = s2n_quic::provider::tls::default::Client::builder()
            .with_certificate(ca_pem)
            .map_err(|x| e(&x))?
            .with_application_protocols([alpn])
            .map_err(|x| e(&x))?
            .build()
            .map_err(|x| e(&x))?;
        let limits = s2n_quic::provider::limits::Limits::new()
            .with_max_handshake_duration(Duration::from_secs(3))
            .map_err(|x| e(&x))?
            .with_max_idle_timeout(Duration::from_secs(60))
            .map_err(|x| e(&x))?;
        let datagrams = s2n_quic::provider::datagram::default::Endpoint::builder()
            .with_send_capacity(64)
            .map_err(|x| e(&x))?
            .build()
            .map_err(|x| e(&x))?;
        let client = s2n_quic::Client::builder()
            .with_tls(tls)
            .map_err(|x| e(&x))?
            .with_io(SocketAddr::new(local, 0))
            .map_err(|x| e(&x))?
            .with_limits(limits)
            .map_err(|x| e(&x))?
            .with_datagram(datagrams)
            .map_err(|x| e(&x))?
            .start()
            .map_err(|x| e(&x))?;
        Ok(Self { client, server, server_name: server_name.to_owned() })
    }

    /// A QUIC connection (TLS done, nothing of PWN's handshake yet).
    pub async fn connect(&self) -> Result<s2n_quic::Connection, String> {
        let connect = s2n_quic::client::Connect::new(self.server).with_server_name(self.server_name.as_str());
        match tokio::time::timeout(ANSWER_WAIT, self.client.connect(connect)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connect timed out".into()),
        }
    }

    /// A connection with a control stream on which `hello` was sent, and the server's answer.
    pub async fn hello(&self, hello: Hello) -> Result<(s2n_quic::Connection, RawStream, Answer), String> {
        let mut conn = self.connect().await?;
        let stream = conn.open_bidirectional_stream().await.map_err(|e| e.to_string())?;
        let mut s = RawStream { stream, buf: Vec::new() };
        s.send_message(&Message::Hello(hello)).await?;
        let answer = s.recv().await;
        Ok((conn, s, answer))
    }
}

/// A client's `Hello` with this build's protocol version.
pub fn client_hello(sim_digest: u64, agent: &str) -> Hello {
    Hello { protocol_version: PROTOCOL_VERSION, sim_digest, role: PeerRole::Client, agent: agent.into() }
}

/// One bidirectional stream with a read buffer for frames.
pub struct RawStream {
    stream: s2n_quic::stream::BidirectionalStream,
    buf: Vec<u8>,
}

fn close_code(e: s2n_quic::stream::Error) -> Answer {
    match e {
        s2n_quic::stream::Error::ConnectionError {
            error: s2n_quic::connection::Error::Application { error, .. },
            ..
        } => Answer::Closed(u64::from(error)),
        other => Answer::Ended(other.to_string()),
    }
}

impl RawStream {
    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.stream.send(Bytes::from(bytes)).await.map_err(|e| e.to_string())
    }

    /// Writes one framed message.
    pub async fn send_message(&mut self, m: &Message) -> Result<(), String> {
        let frame = pwn_proto::encode_frame(m).map_err(|e| e.to_string())?;
        self.send_raw(frame).await
    }

    /// The next whole message, or how the stream ended.
    pub async fn recv(&mut self) -> Answer {
        self.recv_within(ANSWER_WAIT).await
    }

    /// As [`RawStream::recv`], waiting at most `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Answer {
        let read = async {
            loop {
                if let Ok((m, used)) = pwn_proto::decode_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Answer::Message(m);
                }
                match self.stream.receive().await {
                    Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                    Ok(None) => return Answer::Ended("stream finished".into()),
                    Err(e) => return close_code(e),
                }
            }
        };
        tokio::time::timeout(wait, read).await.unwrap_or(Answer::Silent)
    }

    /// The next message that is not a game event or snapshot (what a login is answered by).
    pub async fn recv_reply(&mut self) -> Answer {
        loop {
            match self.recv().await {
                Answer::Message(Message::Event(_) | Message::Snapshot(_) | Message::Pong(_)) => {}
                other => return other,
            }
        }
    }
}
