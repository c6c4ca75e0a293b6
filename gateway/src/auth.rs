//! Authentication as a tower service: [`Authenticator`] answers `Register`, `Login` and
//! `Resume` (argon2id on the bounded hashing pool, `crate::pool`), and [`RateLimitLayer`] puts the
//! per-address and global limits (`crate::limits`, governor) in front of it, refusing at once
//! with `RateLimited` rather than queueing (a queue of attackers would delay honest players).
//! The gateway stacks them with `tower::ServiceBuilder`.

use crate::accounts::{AccountError, Accounts, Session};
use crate::limits::AuthLimits;
use crate::pool::{HashPool, PoolError};
use crate::rules::random_16;
use crate::server::metric;
use governor::clock::{Clock, DefaultClock};
use pwn_proto::{AuthError, AuthFailed, AuthOk, Credentials, Message, SessionToken};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

fn unix_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn failed(error: AuthError, message: &str) -> Message {
    metrics::counter!(metric::AUTH, "outcome" => format!("{error:?}")).increment(1);
    Message::AuthFailed(AuthFailed { error, message: message.to_owned() })
}

fn answer_error(e: &AccountError) -> Message {
    match e {
        AccountError::Rule(r) => failed(AuthError::InvalidInput, &r.to_string()),
        AccountError::NameTaken => failed(AuthError::NameTaken, "that username is taken"),
        AccountError::InvalidCredentials | AccountError::NoSuchAccount(_) => {
            failed(AuthError::InvalidCredentials, "unknown user or wrong password")
        }
        AccountError::Disabled => failed(AuthError::InvalidCredentials, "this account is disabled"),
        AccountError::SessionInvalid => failed(AuthError::SessionInvalid, "the session is unknown, expired or revoked"),
        other => {
            tracing::warn!(error = %other, "authentication failed on the server side");
            failed(AuthError::RateLimited, "the server cannot log you in right now; try again shortly")
        }
    }
}

/// What a client asks for.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Create an account and log in.
    Register(Credentials),
    /// Log in.
    Login(Credentials),
    /// Resume a session by its token.
    Resume(SessionToken),
}

/// One authentication request and the address it came from.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    /// The client's address (what the per-address limit is keyed by).
    pub remote: SocketAddr,
    /// The request.
    pub auth: Auth,
}

/// The answer to send, and the session it opened with its token.
pub type AuthAnswer = (Message, Option<(Session, [u8; 16])>);

/// Runs one authentication request.
async fn authenticate(accounts: Accounts, pool: HashPool, request: Auth) -> AuthAnswer {
    let Ok(token) = random_16() else {
        return (failed(AuthError::RateLimited, "the server cannot log you in right now"), None);
    };
    let now = unix_now_s();
    let result: Result<Result<Session, AccountError>, PoolError> = match request {
        Auth::Register(c) => {
            pool.run(move || {
                let salt = random_16().map_err(|e| AccountError::Hash(e.to_string()))?;
                accounts.register(&c.username, &c.password, salt, now)?;
                accounts.start_session(&c.username, token, now)
            })
            .await
        }
        Auth::Login(c) => pool.run(move || accounts.login(&c.username, &c.password, token, now)).await,
        // No hashing: a plain blocking store read.
        Auth::Resume(t) => match tokio::task::spawn_blocking(move || accounts.resume(&t.0, now)).await {
            Ok(r) => Ok(r.map(|s| Session { replaced: None, ..s })),
            Err(_) => Err(PoolError::Failed),
        },
    };
    match result {
        Err(PoolError::Busy) => (failed(AuthError::RateLimited, "the server is busy; try again shortly"), None),
        Err(PoolError::Failed) => (failed(AuthError::RateLimited, "the server cannot log you in right now"), None),
        Ok(Err(e)) => (answer_error(&e), None),
        Ok(Ok(session)) => {
            metrics::counter!(metric::AUTH, "outcome" => "ok").increment(1);
            let ok = Message::AuthOk(AuthOk { player_id: session.player_id, token: SessionToken(token) });
            (ok, Some((session, token)))
        }
    }
}

/// The future of an authentication answer.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<AuthAnswer, Infallible>> + Send>>;

/// The authentication service.
#[derive(Clone, Debug)]
pub struct Authenticator {
    accounts: Accounts,
    pool: HashPool,
    /// Failed logins per account (`crate::throttle`, `[gw-7]`).
    throttle: Arc<std::sync::Mutex<crate::throttle::AccountThrottle>>,
}

impl Authenticator {
    /// Accounts in the store, hashing on `pool`.
    pub fn new(accounts: Accounts, pool: HashPool) -> Self {
        Self { accounts, pool, throttle: Arc::default() }
    }
}

impl tower::Service<AuthRequest> for Authenticator {
    type Response = AuthAnswer;
    type Error = Infallible;
    type Future = AuthFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The pool bounds the work itself and refuses beyond its queue: always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: AuthRequest) -> Self::Future {
        let (accounts, pool, throttle) = (self.accounts.clone(), self.pool.clone(), self.throttle.clone());
        // `[gw-7]`: a login on an account slowed down by failures is refused before hashing.
        let account = match &request.auth {
            Auth::Login(c) => crate::rules::fold_username(&c.username).ok(),
            _ => None,
        };
        if let Some(a) = &account
            && let Ok(mut t) = throttle.lock()
            && let Err(wait) = t.reserve(a, std::time::Instant::now())
        {
            metrics::counter!(metric::AUTH, "outcome" => "throttled").increment(1);
            let why = format!("too many failed logins for this account; try again in {} s", wait.as_secs().max(1));
            let answer = Message::AuthFailed(AuthFailed { error: AuthError::RateLimited, message: why });
            return Box::pin(async move { Ok((answer, None)) });
        }
        Box::pin(async move {
            let answer = authenticate(accounts, pool, request.auth).await;
            if let (Some(a), Ok(mut t)) = (account, throttle.lock()) {
                match &answer.0 {
                    Message::AuthOk(_) => t.succeeded(&a),
                    Message::AuthFailed(f) if f.error == AuthError::InvalidCredentials => {
                        t.failed(&a, std::time::Instant::now())
                    }
                    _ => t.answered(&a),
                }
            }
            Ok(answer)
        })
    }
}

/// Puts [`AuthLimits`] in front of a service (`[gw-1]`).
#[derive(Debug)]
pub struct RateLimitLayer<C: Clock = DefaultClock> {
    limits: Arc<AuthLimits<C>>,
}

impl<C: Clock> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        Self { limits: self.limits.clone() }
    }
}

impl<C: Clock> RateLimitLayer<C> {
    /// A layer applying `limits`.
    pub fn new(limits: Arc<AuthLimits<C>>) -> Self {
        Self { limits }
    }
}

impl<S, C: Clock> tower::Layer<S> for RateLimitLayer<C> {
    type Service = RateLimited<S, C>;

    fn layer(&self, inner: S) -> RateLimited<S, C> {
        RateLimited { inner, limits: self.limits.clone() }
    }
}

/// A service behind [`RateLimitLayer`].
#[derive(Debug)]
pub struct RateLimited<S, C: Clock = DefaultClock> {
    inner: S,
    limits: Arc<AuthLimits<C>>,
}

impl<S: Clone, C: Clock> Clone for RateLimited<S, C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), limits: self.limits.clone() }
    }
}

impl<S, C: Clock + Clone> tower::Service<AuthRequest> for RateLimited<S, C>
where
    S: tower::Service<AuthRequest, Response = AuthAnswer, Error = Infallible, Future = AuthFuture>,
{
    type Response = AuthAnswer;
    type Error = Infallible;
    type Future = AuthFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: AuthRequest) -> AuthFuture {
        if !self.limits.allow(request.remote.ip()) {
            let refused = failed(AuthError::RateLimited, "too many attempts; wait a little");
            return Box::pin(std::future::ready(Ok((refused, None))));
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Rate;
    use governor::clock::FakeRelativeClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{Service, ServiceExt};

    /// Counts the requests that reach it.
    #[derive(Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl Service<AuthRequest> for Counting {
        type Response = AuthAnswer;
        type Error = Infallible;
        type Future = AuthFuture;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: AuthRequest) -> AuthFuture {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(std::future::ready(Ok((Message::Logout, None))))
        }
    }

    #[tokio::test]
    async fn the_layer_refuses_over_the_limit_before_the_service_sees_it() {
        let clock = FakeRelativeClock::default();
        let limits =
            AuthLimits::with_clock(Rate { per_s: 1.0, burst: 2.0 }, Rate { per_s: 100.0, burst: 100.0 }, clock.clone());
        let reached = Arc::new(AtomicUsize::new(0));
        let svc = tower::ServiceBuilder::new()
            .layer(RateLimitLayer::new(Arc::new(limits)))
            .service(Counting(reached.clone()));
        let ask = |port: u16| AuthRequest {
            remote: SocketAddr::from(([127, 0, 0, 1], port)),
            auth: Auth::Resume(SessionToken([0; 16])),
        };
        let mut answers = Vec::new();
        for _ in 0..4 {
            let Ok((answer, _)) = svc.clone().oneshot(ask(1)).await;
            answers.push(matches!(answer, Message::AuthFailed(AuthFailed { error: AuthError::RateLimited, .. })));
        }
        assert_eq!(answers, [false, false, true, true]);
        assert_eq!(reached.load(Ordering::Relaxed), 2, "refused attempts never reach the service");
        clock.advance(std::time::Duration::from_secs(1));
        let Ok((answer, _)) = svc.clone().oneshot(ask(2)).await;
        assert_eq!(answer, Message::Logout, "the same address (any port) refills with time");
        assert_eq!(reached.load(Ordering::Relaxed), 3);
    }
}
