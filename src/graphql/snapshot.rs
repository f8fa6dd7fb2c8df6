//! The pool-wide figures every dashboard asks for, read once per change of the books.
//!
//! `Pool`'s totals (sums over every balance and every fee entry), its subscriber count, its
//! latest statistics, its processed height, its settings and its payout state change only when
//! the chain's actors write: with every processed block, payment or admin change. Each
//! chain's lease row carries the version of those writes (`store::lease::version`: every
//! fenced write transaction changes it in the same commit, and the few writes made outside one
//! `touch` it after). A request reads that version first (one primary-key read), then takes
//! the figures of that version from here or, the first time, from the database — so a request
//! never sees figures older than the books were when it started, and a thousand dashboards
//! polling between two blocks cost one read of the sums, not a thousand.
//!
//! Before any instance took the lease there is no version; figures are then read each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::domain::PoolSettings;
use crate::store::{self, StoreResult};

/// The figures of one version of a chain's books, each read the first time it is asked.
#[derive(Default)]
pub struct PoolSnapshot {
    /// The balance and fee sums.
    pub totals: OnceCell<store::ledger::PoolTotals>,
    /// The latest statistics row.
    pub latest: OnceCell<Option<store::stats::PoolStats>>,
    /// The processed height.
    pub processed: OnceCell<i64>,
    /// Whether payouts are held, and why.
    pub payout_state: OnceCell<store::settings::PayoutState>,
    /// Subscribers ACTIVE or COOLING_DOWN.
    pub subscriber_count: OnceCell<u64>,
    /// The stored settings version in force from the next block, if any.
    pub settings: OnceCell<Option<PoolSettings>>,
}

/// A version of a chain's books: its lease's `(epoch, writes)`.
type BooksVersion = (i64, i64);

/// The current snapshot of each chain, by chain name.
#[derive(Default)]
pub struct PoolSnapshots {
    current: Mutex<HashMap<String, (BooksVersion, Arc<PoolSnapshot>)>>,
}

impl PoolSnapshots {
    /// The snapshot of `chain`'s books as they are now: shared with every request that saw the
    /// same version; a new, empty one when the version changed (or there is none yet).
    pub async fn get(
        &self,
        db: &sea_orm::DatabaseConnection,
        chain: &str,
    ) -> StoreResult<Arc<PoolSnapshot>> {
        let version = store::lease::version(db, chain).await?;
        let Some(version) = version else {
            return Ok(Arc::new(PoolSnapshot::default()));
        };
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, snapshot)) = current.get(chain) {
            if *seen == version {
                return Ok(Arc::clone(snapshot));
            }
            // A request that read an older version than one already here: its own, unshared
            // snapshot (the versions only grow: epoch by takeover, writes by write).
            if *seen > version {
                return Ok(Arc::new(PoolSnapshot::default()));
            }
        }
        let snapshot = Arc::new(PoolSnapshot::default());
        current.insert(chain.to_owned(), (version, Arc::clone(&snapshot)));
        Ok(snapshot)
    }
}
