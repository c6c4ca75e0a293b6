//! Service RPC: typed request/response between services as `tower::Service`s over QUIC
//! streams, and one-way notifications.
//!
//! Each call uses its own bidirectional stream (cheap in QUIC, and a slow call never blocks
//! another): the caller sends one `RpcRequest` frame and finishes its side; the server answers
//! one `RpcResponse` frame. A notification is one `Notify` frame on a unidirectional stream.
//! [`client`] builds the caller's stack: a timeout, a concurrency limit, and retries only for
//! calls marked idempotent that failed in transport (never for an answer the server gave).

use crate::error::{ConnError, from_connection_error, from_stream_error};
use bytes::Bytes;
use pwn_proto::codec::{DecodeError, decode_frame};
use pwn_proto::{Message, Notify, RpcRequest, RpcResponse, encode_frame};
use s2n_quic::connection::{Handle, StreamAcceptor};
use s2n_quic::stream::{PeerStream, ReceiveStream};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Calls a server handles at once per connection; further streams wait their turn.
pub const SERVER_CONCURRENT_CALLS_MAX: usize = 64;
/// Most retries of an idempotent call.
pub const RETRIES_MAX: u32 = 3;

/// One call.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcCall {
    /// The operation.
    pub method: u16,
    /// Encoded arguments.
    pub body: Vec<u8>,
    /// Whether running it twice is the same as once (only such calls are retried).
    pub idempotent: bool,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The server answered with an error.
    #[error("remote error {code}: {message}")]
    Remote {
        /// Application error code.
        code: u16,
        /// The server's explanation.
        message: String,
    },
    /// The transport failed (the call may or may not have run).
    #[error("transport")]
    Transport(#[from] ConnError),
    /// The server answered with something other than a response.
    #[error("the server broke the RPC protocol")]
    Protocol,
}

/// Reads exactly one message from a stream the peer finishes after it.
async fn read_one(stream: &mut ReceiveStream) -> Result<Message, ConnError> {
    let mut buf = Vec::new();
    loop {
        match decode_frame(&buf) {
            Ok((m, _)) => return Ok(m),
            Err(DecodeError::Violation(v)) => return Err(ConnError::Protocol(v)),
            Err(DecodeError::Incomplete { .. }) => {}
        }
        match stream.receive().await.map_err(from_stream_error)? {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => return Err(ConnError::EndedDuringHandshake),
        }
    }
}

/// The raw caller: one stream per call on a connection. Usually wrapped by [`client`].
#[derive(Clone, Debug)]
pub struct RpcClient {
    handle: Handle,
}

impl RpcClient {
    /// A caller on an established connection.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// Sends a one-way notification on its own unidirectional stream.
    pub async fn notify(&self, topic: u16, body: Vec<u8>) -> Result<(), ConnError> {
        let mut handle = self.handle.clone();
        let mut stream = handle.open_send_stream().await.map_err(from_connection_error)?;
        let frame = encode_frame(&Message::Notify(Notify { topic, body }))?;
        stream.send(Bytes::from(frame)).await.map_err(from_stream_error)?;
        stream.close().await.map_err(from_stream_error)
    }
}

impl Service<RpcCall> for RpcClient {
    type Response = Vec<u8>;
    type Error = RpcError;
    type Future = Pin<Box<dyn Future<Output = Result<Vec<u8>, RpcError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: RpcCall) -> Self::Future {
        let mut handle = self.handle.clone();
        Box::pin(async move {
            let stream = handle.open_bidirectional_stream().await.map_err(from_connection_error)?;
            let (mut recv, mut send) = stream.split();
            let frame = encode_frame(&Message::RpcRequest(RpcRequest { method: call.method, body: call.body }))
                .map_err(ConnError::from)?;
            send.send(Bytes::from(frame)).await.map_err(from_stream_error)?;
            send.finish().map_err(from_stream_error)?;
            match read_one(&mut recv).await? {
                Message::RpcResponse(RpcResponse::Ok(body)) => Ok(body),
                Message::RpcResponse(RpcResponse::Err { code, message }) => Err(RpcError::Remote { code, message }),
                _ => Err(RpcError::Protocol),
            }
        })
    }
}

/// Retries idempotent calls that failed in transport or timed out.
#[derive(Clone, Debug)]
pub struct IdempotentRetry {
    left: u32,
}

impl IdempotentRetry {
    /// Up to `attempts` retries.
    pub fn new(attempts: u32) -> Self {
        Self { left: attempts }
    }
}

impl<E: AsRef<dyn std::error::Error + Send + Sync + 'static>> tower::retry::Policy<RpcCall, Vec<u8>, E>
    for IdempotentRetry
{
    type Future = std::future::Ready<()>;

    fn retry(&mut self, call: &mut RpcCall, result: &mut Result<Vec<u8>, E>) -> Option<Self::Future> {
        let Err(e) = result else { return None };
        // An answer from the server is final; only a lost or late answer is worth retrying.
        let remote =
            matches!(e.as_ref().downcast_ref::<RpcError>(), Some(RpcError::Remote { .. } | RpcError::Protocol));
        if !call.idempotent || remote || self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, call: &RpcCall) -> Option<RpcCall> {
        call.idempotent.then(|| call.clone())
    }
}

/// The caller's stack over a connection: retry (idempotent only) around a per-attempt timeout,
/// under a concurrency limit.
pub fn client(
    handle: Handle,
    timeout: Duration,
    concurrency: usize,
) -> impl Service<RpcCall, Response = Vec<u8>, Error = BoxError, Future: Send> + Clone + Send {
    ServiceBuilder::new()
        .retry(IdempotentRetry::new(RETRIES_MAX))
        .timeout(timeout)
        .concurrency_limit(concurrency.max(1))
        .service(RpcClient::new(handle))
        .map_err(BoxError::from)
}

/// What a server-side handler returns: an encoded result, or an error code and message.
pub type HandlerResult = Result<Vec<u8>, (u16, String)>;

/// Serves calls and notifications arriving on `streams` until the connection ends. Each call
/// runs `handler(method, body)`; notifications go to `notifications` (dropped and counted if it
/// is full). At most [`SERVER_CONCURRENT_CALLS_MAX`] calls run at once.
pub async fn serve<H, F>(mut streams: StreamAcceptor, handler: H, notifications: tokio::sync::mpsc::Sender<Notify>)
where
    H: Fn(u16, Vec<u8>) -> F + Send + Sync + 'static,
    F: Future<Output = HandlerResult> + Send + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(tokio::sync::Semaphore::new(SERVER_CONCURRENT_CALLS_MAX));
    while let Ok(Some(stream)) = streams.accept().await {
        match stream {
            PeerStream::Receive(mut recv) => {
                let notifications = notifications.clone();
                tokio::spawn(async move {
                    if let Ok(Message::Notify(n)) = read_one(&mut recv).await
                        && notifications.try_send(n).is_err()
                    {
                        metrics::counter!("pwn_net_notifications_dropped_total").increment(1);
                    }
                });
            }
            PeerStream::Bidirectional(bidi) => {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let (mut recv, mut send) = bidi.split();
                    let response = match read_one(&mut recv).await {
                        Ok(Message::RpcRequest(r)) => match handler(r.method, r.body).await {
                            Ok(body) => RpcResponse::Ok(body),
                            Err((code, message)) => RpcResponse::Err { code, message },
                        },
                        _ => RpcResponse::Err { code: u16::MAX, message: "expected one RpcRequest".into() },
                    };
                    if let Ok(frame) = encode_frame(&Message::RpcResponse(response)) {
                        let _ = send.send(Bytes::from(frame)).await;
                        let _ = send.close().await;
                    }
                });
            }
        }
    }
}

/// Convenience: one call through a stack built by [`client`].
pub async fn call<S>(stack: &mut S, call: RpcCall) -> Result<Vec<u8>, BoxError>
where
    S: Service<RpcCall, Response = Vec<u8>, Error = BoxError>,
{
    stack.ready().await?.call(call).await
}
