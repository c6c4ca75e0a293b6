//! The hashing pool: argon2id costs 19 MiB and tens of milliseconds per call, so the gateway
//! runs at most `workers` at once on threads of its own and lets at most `queue_max` more wait;
//! anything beyond is refused at once (counted), so memory stays bounded under a flood and the
//! async threads that proxy game traffic never hash.
//!
//! `[gw-9]` The hashing threads run at a lower scheduling priority (`nice`, [`HASH_NICE`] by
//! default): a login storm hashes as fast as the machine has spare time, but on a busy machine
//! the zones' ticks, the proxying and everything else at normal priority go first (issue 11,
//! item 13). The cost falls on logins, which wait longer under a storm; the game does not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::Semaphore;

/// Metric: work refused because the pool's queue was full.
pub const REFUSED_METRIC: &str = "pwn_gateway_hash_pool_refused_total";

/// The hashing threads' niceness (0 is normal, 19 the lowest priority). At 10 a busy thread at
/// normal priority gets about nine times the CPU of a hashing thread competing with it.
pub const HASH_NICE: i32 = 10;

/// Why pooled work did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Too much is waiting already.
    #[error("busy: too many logins waiting")]
    Busy,
    /// The work panicked or was cancelled.
    #[error("the work failed to complete")]
    Failed,
}

type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool for slow, blocking work, on its own low-priority threads.
#[derive(Clone, Debug)]
pub struct HashPool {
    admitted: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    refused: Arc<AtomicU64>,
}

impl HashPool {
    /// At most `workers` jobs run at once (on `workers` threads at niceness [`HASH_NICE`]) and
    /// `queue_max` more wait.
    pub fn new(workers: usize, queue_max: usize) -> Self {
        Self::with_nice(workers, queue_max, HASH_NICE)
    }

    /// As [`HashPool::new`], the threads at niceness `nice` (0 for normal priority).
    pub fn with_nice(workers: usize, queue_max: usize, nice: i32) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("pwn-hash-{i}")).spawn(move || {
                if nice != 0
                    && let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)
                {
                    tracing::warn!(error = %e, nice, "cannot lower the hashing thread's priority");
                }
                // Ends when every `HashPool` clone (every sender) is gone.
                loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        Self {
            admitted: Arc::new(Semaphore::new(workers.max(1) + queue_max)),
            jobs,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Jobs refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Runs `job` on a hashing thread when one is free, or refuses at once if the queue is
    /// full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(REFUSED_METRIC).increment(1);
            return Err(PoolError::Busy);
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The place is the job's, not the caller's: a caller that stops waiting does not
            // free it while the job is still queued (else abandoned calls would pile up in the
            // channel past `queue_max`), and a job nobody waits for is not run.
            let _admitted = admitted;
            if done.is_closed() {
                return;
            }
            // A panicking job drops `done`: the caller sees `Failed`, the thread lives on.
            if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                let _ = done.send(value);
            }
        });
        self.jobs.send(job).map_err(|_| PoolError::Failed)?;
        result.await.map_err(|_| PoolError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_beyond_the_queue_is_refused_not_queued() {
        let pool = HashPool::new(1, 2);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut jobs = Vec::new();
        for i in 0..3 {
            let p = pool.clone();
            let g = gate.clone();
            jobs.push(tokio::spawn(async move {
                p.run(move || {
                    let _ = g.lock().map(|r| r.recv());
                    i
                })
                .await
            }));
        }
        // Three admitted (one running, two waiting): the fourth is refused immediately.
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| 9).await, Err(PoolError::Busy));
        assert_eq!(pool.refused(), 1);
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        let mut done: Vec<i32> = Vec::new();
        for j in jobs {
            done.push(j.await.unwrap().unwrap());
        }
        done.sort();
        assert_eq!(done, vec![0, 1, 2]);
        assert_eq!(pool.run(|| 5).await, Ok(5), "room again once the flood has passed");
    }

    /// `[gw-9]`: the work runs at the pool's lower priority; a panic in it is a `Failed`, and
    /// the pool still works after it.
    #[tokio::test]
    async fn gw_9_hashing_runs_at_a_lower_priority_and_survives_a_panic() {
        let pool = HashPool::new(1, 4);
        let nice = pool.run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid()))).await;
        assert_eq!(nice.unwrap().unwrap(), HASH_NICE);
        let normal = HashPool::with_nice(1, 4, 0);
        let base = rustix::process::getpriority_process(None).unwrap();
        let nice = normal.run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid()))).await;
        assert_eq!(nice.unwrap().unwrap(), base);
        assert_eq!(pool.run(|| -> i32 { panic!("in a job") }).await, Err(PoolError::Failed));
        assert_eq!(pool.run(|| 3).await, Ok(3));
    }

    /// A caller that stops waiting (its connection ended, its task was aborted) gives up its
    /// place only when its job has left the queue: otherwise every abandoned call would leave
    /// its job (the password with it) in the channel and free its place for another, and the
    /// queue bound would hold nothing. A job nobody waits for any more is not run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_calls_keep_their_place_until_dequeued_and_are_not_run() {
        let pool = HashPool::new(1, 1);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let busy = {
            let p = pool.clone();
            tokio::spawn(async move { p.run(move || gate.recv().is_ok()).await })
        };
        while pool.admitted.available_permits() > 1 {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicU64::new(0));
        let mut busy_answers = 0;
        for _ in 0..20 {
            let r = ran.clone();
            let call = pool.run(move || {
                r.fetch_add(1, Ordering::Relaxed);
            });
            // Polled once (admitted and queued, or refused), then abandoned.
            let mut call = std::pin::pin!(call);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(Err(PoolError::Busy)) = call.as_mut().poll(&mut cx) {
                busy_answers += 1;
            }
        }
        assert_eq!(busy_answers, 19, "abandoned calls freed their places while their jobs still waited");
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        // The abandoned job leaves the queue (unrun) and gives its place back.
        while pool.admitted.available_permits() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| 5).await, Ok(5));
        assert_eq!(ran.load(Ordering::Relaxed), 0, "a job nobody waited for was run");
    }
}
