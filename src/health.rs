//! What is up and what is down, for `/healthz`, `/metrics` and the log.
//!
//! Each chain has a daemon probe that calls `getblockcount` every `poll_interval_secs` while
//! the daemon answers, and retries with exponential backoff (1 s to 60 s) while it does not.
//! It never gives up and never exits the process: it logs once when a daemon goes down (and
//! again if the reason changes) and once when it comes back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::daemon::Backoff;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::metrics::Metrics;

/// The last known state of one chain's daemon.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    /// Whether the last `getblockcount` succeeded.
    pub up: bool,
    /// Why it is down, in words.
    pub reason: Option<String>,
    /// The daemon's tip height when it last answered.
    pub tip_height: Option<u64>,
    /// When it was last asked.
    pub checked_at: Option<DateTime<Utc>>,
    /// Things an operator should fix although the daemon answers.
    pub warnings: Vec<String>,
    /// Why the pool refuses to run this chain (e.g. an ID-staking chain); set once, kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Default for DaemonStatus {
    fn default() -> Self {
        DaemonStatus {
            up: false,
            reason: Some("not checked yet".to_owned()),
            tip_height: None,
            checked_at: None,
            warnings: Vec::new(),
            refused: None,
        }
    }
}

/// How the pool follows one chain's daemon.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum SyncStatus {
    /// The pool follows the daemon's chain (or catches up with it).
    #[default]
    Following,
    /// The daemon's tip is below the processed height on the same hashes: it reindexes, was
    /// restarted from an older copy, or is a fail-over node still syncing. The pool waits and
    /// changes nothing until the daemon is back at the processed height.
    Behind {
        /// The daemon's tip height.
        daemon_tip: i64,
        /// The pool's processed height.
        processed_height: i64,
    },
    /// The daemon's chain left the pool's deeper than the reorganisation limit: the pool
    /// unwinds nothing and stops following until the daemon's chain meets its own again.
    Stopped {
        /// Why, in words an operator can act on.
        reason: String,
    },
}

impl SyncStatus {
    /// The reason in words, for the API and the log; `None` while following.
    pub fn reason(&self) -> Option<String> {
        match self {
            SyncStatus::Following => None,
            SyncStatus::Behind {
                daemon_tip,
                processed_height,
            } => Some(format!(
                "daemon behind the pool: tip {daemon_tip}, processed {processed_height}"
            )),
            SyncStatus::Stopped { reason } => Some(reason.clone()),
        }
    }
}

/// Shared, cheaply cloned health state of every chain's daemon.
#[derive(Debug, Clone, Default)]
pub struct Health {
    daemons: Arc<RwLock<BTreeMap<String, DaemonStatus>>>,
    sync: Arc<RwLock<BTreeMap<String, SyncStatus>>>,
    /// Counts the changes above: a cache of answers that show any of it keys on this.
    generation: Arc<AtomicU64>,
}

impl Health {
    /// Health state with every configured chain "not checked yet".
    pub fn new<'a>(chains: impl IntoIterator<Item = &'a str>) -> Health {
        let map = chains
            .into_iter()
            .map(|c| (c.to_owned(), DaemonStatus::default()))
            .collect();
        Health {
            daemons: Arc::new(RwLock::new(map)),
            sync: Arc::default(),
            generation: Arc::default(),
        }
    }

    /// A number that changes with every change of this state other than the time of the last
    /// probe (it only grows).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How the pool follows one chain.
    pub fn sync(&self, chain: &str) -> SyncStatus {
        self.sync
            .read()
            .map(|m| m.get(chain).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Records how the pool follows one chain; returns the previous state.
    pub fn set_sync(&self, chain: &str, status: SyncStatus) -> SyncStatus {
        let previous = match self.sync.write() {
            Ok(mut m) => m
                .insert(chain.to_owned(), status.clone())
                .unwrap_or_default(),
            Err(_) => SyncStatus::default(),
        };
        if previous != status {
            self.changed();
        }
        previous
    }

    /// The state of one chain's daemon.
    pub fn daemon(&self, chain: &str) -> DaemonStatus {
        self.daemons
            .read()
            .map(|m| m.get(chain).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every chain's daemon state.
    pub fn all(&self) -> BTreeMap<String, DaemonStatus> {
        self.daemons.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Sets what an operator should fix although the daemon answers (e.g. not staking).
    pub fn set_warnings(&self, chain: &str, warnings: Vec<String>) {
        if let Ok(mut m) = self.daemons.write() {
            let status = m.entry(chain.to_owned()).or_default();
            if status.warnings != warnings {
                status.warnings = warnings;
                self.changed();
            }
        }
    }

    /// Marks a chain as refused (kept across probes).
    pub fn set_refused(&self, chain: &str, reason: String) {
        if let Ok(mut m) = self.daemons.write() {
            m.entry(chain.to_owned()).or_default().refused = Some(reason);
        }
        self.changed();
    }

    /// Updates one chain's state and returns the previous one.
    pub fn set(&self, chain: &str, status: DaemonStatus) -> DaemonStatus {
        let shown = |s: &DaemonStatus| {
            (
                s.up,
                s.reason.clone(),
                s.tip_height,
                s.warnings.clone(),
                s.refused.clone(),
            )
        };
        let now = shown(&status);
        let previous = match self.daemons.write() {
            Ok(mut m) => m.insert(chain.to_owned(), status).unwrap_or_default(),
            Err(_) => DaemonStatus::default(),
        };
        // `checked_at` alone changes with every probe: not a change of what the API shows.
        if shown(&previous) != now {
            self.changed();
        }
        previous
    }
}

/// What `/healthz` says about a failed call.
pub fn reason_of(err: &RpcError) -> String {
    match err {
        RpcError::Unreachable { .. }
        | RpcError::WarmingUp(_)
        | RpcError::Auth
        | RpcError::Forbidden => err.to_string(),
        other => format!("daemon error: {other}"),
    }
}

/// Probes one chain's daemon forever (until the actix system stops).
pub async fn run_daemon_probe(
    chain: String,
    client: Arc<RpcClient>,
    health: Health,
    metrics: Metrics,
    poll_interval: Duration,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let result = client.get_block_count().await;
        let delay = record_probe(
            &chain,
            client.url(),
            &health,
            &metrics,
            result,
            &mut backoff,
            poll_interval,
        );
        tokio::time::sleep(delay).await;
    }
}

/// Applies one probe result to the health state, logs transitions, and returns how long to
/// wait before the next probe.
fn record_probe(
    chain: &str,
    url: &str,
    health: &Health,
    metrics: &Metrics,
    result: Result<u64, RpcError>,
    backoff: &mut Backoff,
    poll_interval: Duration,
) -> Duration {
    let previous = health.daemon(chain);
    match result {
        Ok(height) => {
            if !previous.up {
                log::info!("chain {chain}: daemon at {url} answers; tip height {height}");
            }
            health.set(
                chain,
                DaemonStatus {
                    up: true,
                    reason: None,
                    tip_height: Some(height),
                    checked_at: Some(Utc::now()),
                    warnings: previous.warnings,
                    refused: previous.refused,
                },
            );
            metrics.set_daemon(chain, true, Some(height));
            backoff.reset();
            poll_interval
        }
        Err(err) => {
            let reason = reason_of(&err);
            let delay = backoff.next_delay();
            if previous.reason.as_deref() != Some(reason.as_str()) {
                log::warn!(
                    "chain {chain}: {reason}; retrying with backoff (next try in {}s)",
                    delay.as_secs()
                );
            } else if backoff.attempts().is_multiple_of(20) {
                log::warn!(
                    "chain {chain}: still down after {} tries: {reason}",
                    backoff.attempts()
                );
            }
            metrics.rpc_failure(chain);
            metrics.set_daemon(chain, false, previous.tip_height);
            health.set(
                chain,
                DaemonStatus {
                    up: false,
                    reason: Some(reason),
                    tip_height: previous.tip_height,
                    checked_at: Some(Utc::now()),
                    warnings: previous.warnings,
                    refused: previous.refused,
                },
            );
            delay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_moves_with_what_the_api_shows_not_with_every_probe() {
        let health = Health::new(["VRSC"]);
        let metrics = Metrics::new();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let poll = Duration::from_secs(5);
        let mut probe =
            |result| record_probe("VRSC", "u", &health, &metrics, result, &mut backoff, poll);
        let g0 = health.generation();
        probe(Ok(100));
        let g1 = health.generation();
        assert!(g1 > g0, "the first answer shows a tip");
        probe(Ok(100));
        assert_eq!(health.generation(), g1, "the same tip, a later probe");
        probe(Ok(101));
        let g2 = health.generation();
        assert!(g2 > g1, "a new tip");
        health.set_sync("VRSC", SyncStatus::Following);
        assert_eq!(health.generation(), g2, "following, as before");
        health.set_sync(
            "VRSC",
            SyncStatus::Behind {
                daemon_tip: 90,
                processed_height: 101,
            },
        );
        let g3 = health.generation();
        assert!(g3 > g2, "behind");
        health.set_warnings("VRSC", vec!["not staking".into()]);
        let g4 = health.generation();
        assert!(g4 > g3);
        health.set_warnings("VRSC", vec!["not staking".into()]);
        assert_eq!(health.generation(), g4);
    }

    #[test]
    fn probe_results_move_the_state_and_the_backoff() {
        let health = Health::new(["VRSC"]);
        let metrics = Metrics::new();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let poll = Duration::from_secs(5);
        let down = || {
            Err(RpcError::Unreachable {
                url: "http://x".into(),
                detail: "connection refused".into(),
            })
        };
        let mut probe =
            |result| record_probe("VRSC", "u", &health, &metrics, result, &mut backoff, poll);

        assert_eq!(probe(down()).as_secs(), 1);
        assert_eq!(probe(down()).as_secs(), 2);
        let status = health.daemon("VRSC");
        assert!(!status.up);
        assert!(
            status
                .reason
                .unwrap_or_default()
                .contains("daemon unreachable")
        );

        assert_eq!(probe(Ok(42)), poll);
        let status = health.daemon("VRSC");
        assert!(status.up);
        assert_eq!(status.tip_height, Some(42));
        assert_eq!(status.reason, None);
        // After a success the backoff starts over; the last known tip is kept while down.
        assert_eq!(probe(down()).as_secs(), 1);
        assert_eq!(health.daemon("VRSC").tip_height, Some(42));
    }
}
