//! The hashing pool: argon2id costs 19 MiB and tens of milliseconds per call, so the gateway
//! runs at most `workers` at once on blocking threads and lets at most `queue_max` more wait;
//! anything beyond is refused at once (counted), so memory stays bounded under a flood and the
//! async threads that proxy game traffic never hash.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

/// Metric: work refused because the pool's queue was full.
pub const REFUSED_METRIC: &str = "pwn_gateway_hash_pool_refused_total";

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

/// A bounded pool for slow, blocking work.
#[derive(Clone, Debug)]
pub struct HashPool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
}

impl HashPool {
    /// At most `workers` jobs run at once and `queue_max` more wait.
    pub fn new(workers: usize, queue_max: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(workers.max(1))),
            admitted: Arc::new(Semaphore::new(workers.max(1) + queue_max)),
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Jobs refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread when a worker is free, or refuses at once if the queue
    /// is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(REFUSED_METRIC).increment(1);
            return Err(PoolError::Busy);
        };
        let _running = self.running.clone().acquire_owned().await.map_err(|_| PoolError::Failed)?;
        tokio::task::spawn_blocking(job).await.map_err(|_| PoolError::Failed)
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
}
