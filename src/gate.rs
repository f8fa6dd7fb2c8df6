//! The chain first: while the pool processes a block at the daemon's tip, new API work waits
//! at the door (`http.yield_to_blocks_ms`).
//!
//! A nice value decides who gets a busy core, not what else the machine does meanwhile: a
//! flood of API requests also fills the caches, the allocator, the kernel's network path, the
//! database's locks and the daemon's RPC threads (verusd answers most calls under its one
//! `cs_main` lock). So the chain follower closes the gate for the few milliseconds of a live
//! block, from asking the daemon's tip to the last actor's commit. GraphQL requests, the
//! statement exports and daemon calls made for clients that arrive meanwhile wait until it
//! opens again, and so do requests already running, at their next parse, validation or
//! field (the schema extension's hooks, `graphql::limits`): a request is paused between two
//! steps, so it holds no lock or transaction while it waits. On SQLite, a statement of the
//! API's own connections that is running when the gate closes pauses too, between two steps
//! of SQLite's machine (`store::BlockYield`; it holds a read snapshot only, which never
//! blocks the writer in WAL mode). What else is already running goes on to the end of its
//! step (an answer being serialised and written): with fewer requests executing at once
//! (`http.max_concurrent_requests`) that is less. Nothing waits past
//! `http.yield_to_blocks_ms` after the gate closed: a block that takes longer (a maturing block, a slow database) or a watcher
//! that stalls never shuts the API out for longer. While the pool catches up from far behind
//! the gate stays open: the API is not held for the whole catch-up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Shared by the chain followers (which close it) and the API (which waits at it).
#[derive(Clone, Default)]
pub struct BlockGate {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Blocks being processed now (one per chain at most).
    closed_by: AtomicUsize,
    /// Since when it has been closed without a break.
    closed_since: Mutex<Option<Instant>>,
    opened: Notify,
    /// [`Inner::opened`] for threads that block ([`BlockGate::pass_blocking`]), with
    /// `closed_since`.
    opened_sync: Condvar,
}

/// Holds the gate closed until dropped.
#[must_use = "the gate opens again when this is dropped"]
pub struct Closed {
    inner: Arc<Inner>,
}

impl Drop for Closed {
    fn drop(&mut self) {
        let mut since = self
            .inner
            .closed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.inner.closed_by.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = None;
            self.inner.opened.notify_waiters();
            self.inner.opened_sync.notify_all();
        }
    }
}

impl BlockGate {
    /// Closes the gate until the returned guard is dropped (closings by several chains nest).
    pub fn close(&self) -> Closed {
        let mut since = self
            .inner
            .closed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.inner.closed_by.fetch_add(1, Ordering::AcqRel) == 0 {
            *since = Some(Instant::now());
        }
        Closed {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Whether a block is being processed now.
    pub fn is_closed(&self) -> bool {
        self.inner.closed_by.load(Ordering::Acquire) > 0
    }

    /// Waits until the gate is open, but never past `max` after it closed: however many
    /// times a request comes to it while one block is processed (once per field it
    /// resolves), together they wait no longer than that. Whether it had to wait.
    pub async fn pass(&self, max: Duration) -> bool {
        if !self.is_closed() || max.is_zero() {
            return false;
        }
        let Some(since) = *self
            .inner
            .closed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        else {
            return false;
        };
        let deadline = since + max;
        if Instant::now() >= deadline {
            return false;
        }
        loop {
            let opened = self.inner.opened.notified();
            tokio::pin!(opened);
            // Registered before the check, so an opening between the two is not missed.
            opened.as_mut().enable();
            if !self.is_closed() {
                return true;
            }
            if tokio::time::timeout_at(deadline, opened).await.is_err() {
                return true;
            }
        }
    }

    /// [`BlockGate::pass`] for a thread that may block, such as a SQLite connection's between
    /// two steps of a statement (`store::connect_api`): the same wait, on the thread.
    pub fn pass_blocking(&self, max: Duration) -> bool {
        if !self.is_closed() || max.is_zero() {
            return false;
        }
        let mut since = self
            .inner
            .closed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(closed) = *since else {
            return false;
        };
        let deadline = closed.into_std() + max;
        let mut waited = false;
        loop {
            let now = std::time::Instant::now();
            if since.is_none() || now >= deadline {
                return waited;
            }
            since = self
                .inner
                .opened_sync
                .wait_timeout(since, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            waited = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_gate_lets_work_through_at_once() {
        let gate = BlockGate::default();
        assert!(!gate.is_closed());
        assert!(!gate.pass(Duration::from_secs(60)).await);
    }

    #[tokio::test]
    async fn work_waits_until_the_block_is_done() {
        let gate = BlockGate::default();
        let closed = gate.close();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass(Duration::from_secs(3600)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "it went through a closed gate");
        drop(closed);
        let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the gate did not open when the block was done")
            .expect("the waiter panicked");
        assert!(waited);
        assert!(!gate.is_closed());
    }

    #[tokio::test]
    async fn two_chains_closing_keep_it_closed_until_both_are_done() {
        let gate = BlockGate::default();
        let first = gate.close();
        let second = gate.close();
        drop(first);
        assert!(gate.is_closed());
        drop(second);
        assert!(!gate.is_closed());
    }

    #[tokio::test]
    async fn a_gate_left_closed_holds_work_no_longer_than_the_limit_after_it_closed() {
        let gate = BlockGate::default();
        let _stalled = gate.close();
        let started = Instant::now();
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            gate.pass(Duration::from_millis(50)),
        )
        .await
        .expect("the wait went past its limit");
        assert!(waited);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(gate.is_closed());
        // The same block: the limit is spent, the next field of the request goes through.
        assert!(!gate.pass(Duration::from_millis(50)).await);
        // A limit of zero: no waiting at all.
        assert!(!gate.pass(Duration::ZERO).await);
    }

    #[test]
    fn a_thread_waits_until_the_block_is_done() {
        let gate = BlockGate::default();
        assert!(!gate.pass_blocking(Duration::from_secs(60)));
        let closed = gate.close();
        let waiter = std::thread::spawn({
            let gate = gate.clone();
            move || gate.pass_blocking(Duration::from_secs(3600))
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "it went through a closed gate");
        drop(closed);
        assert!(waiter.join().expect("the waiter panicked"));
    }

    #[tokio::test]
    async fn a_thread_waits_no_longer_than_the_limit_after_the_gate_closed() {
        let gate = BlockGate::default();
        let _stalled = gate.close();
        let started = std::time::Instant::now();
        assert!(gate.pass_blocking(Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // The same block: the limit is spent.
        assert!(!gate.pass_blocking(Duration::from_millis(50)));
        assert!(!gate.pass_blocking(Duration::ZERO));
    }
}
