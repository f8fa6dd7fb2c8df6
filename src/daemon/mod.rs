//! The only code that talks to verusd: JSON-RPC 1.0 over HTTP (`rpc`) and, with the chain
//! follower, ZeroMQ block notifications. Callers retry retryable errors with [`Backoff`].

pub mod rpc;
pub mod types;
pub mod zmq;

use std::time::Duration;

/// Exponential backoff between retries: doubles from `min` up to `max`, reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    /// A backoff from `min` doubling to at most `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
            attempts: 0,
        }
    }

    /// The delay before the next retry; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts += 1;
        delay
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.next = self.min;
        self.attempts = 0;
    }
}

/// Runs `call` until it succeeds, fails with an error that waiting cannot fix, or has failed
/// `max_attempts` times; waits `backoff` between attempts (daemon down, warming up, a reply
/// that did not parse).
pub async fn retry<T, F, Fut>(
    backoff: &mut Backoff,
    max_attempts: u32,
    mut call: F,
) -> Result<T, rpc::RpcError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, rpc::RpcError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match call().await {
            Ok(v) => {
                backoff.reset();
                return Ok(v);
            }
            Err(e) if e.is_retryable() && attempts < max_attempts => {
                let delay = backoff.next_delay();
                log::debug!("retrying in {} ms after: {e}", delay.as_millis());
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        assert_eq!(b.attempts(), 5);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
