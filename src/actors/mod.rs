//! The actors: a ChainWatcher, SubscriberRegistry, StakeTracker and PayoutManager per
//! configured chain, and one Notifier. Wiring is explicit in
//! `startup`; each actor owns its tables and is reached only through its messages.

pub mod chain_watcher;
pub mod events;
pub mod graph;
pub mod notifier;
pub mod payout_manager;
pub mod stake_tracker;
pub mod subscriber_registry;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix::Recipient;
use sea_orm::DatabaseConnection;

use crate::config::ChainConfig;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::domain::Height;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::lease::Fence;

/// What the actors of one chain share: the chain, the database, the daemon, the lease that
/// fences their writes, what the watcher learned about the chain, and the Notifier, told
/// after every commit that wrote events.
#[derive(Clone)]
pub struct ChainContext {
    /// The chain.
    pub chain: Arc<ChainConfig>,
    /// The database.
    pub db: DatabaseConnection,
    /// The database, for block transactions: replayed from the chain if a power cut loses
    /// one (`store::connect_blocks`).
    pub blocks_db: DatabaseConnection,
    /// The database, for checks beside the blocks ([`graph::ChainParts::background_db`]).
    pub background_db: DatabaseConnection,
    /// Its daemon.
    pub rpc: Arc<RpcClient>,
    /// This leader's lease.
    pub fence: Fence,
    /// The coinbase maturity, once the watcher knows it.
    pub facts: ChainFacts,
    /// The Notifier.
    pub events: Recipient<events::EventsWritten>,
    /// Metrics.
    pub metrics: Metrics,
}

/// What the ChainWatcher learns about its chain before it processes any block, for the other
/// actors of that chain: the coinbase maturity (configured, or derived from the daemon's
/// `getcurrency`). Cheap to clone; unknown until the watcher has asked.
#[derive(Clone, Debug, Default)]
pub struct ChainFacts(Arc<AtomicI64>);

impl ChainFacts {
    /// The chain's coinbase maturity, once known.
    pub fn coinbase_maturity(&self) -> Option<Height> {
        Some(self.0.load(Ordering::Acquire)).filter(|m| *m > 0)
    }

    /// Records the chain's coinbase maturity.
    pub fn set_coinbase_maturity(&self, maturity: Height) {
        self.0.store(maturity, Ordering::Release);
    }
}

/// Why an actor could not do what a message asked.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// The database failed; the work was rolled back and can be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The daemon failed; nothing was written.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The request itself is wrong (unknown identity, malformed name).
    #[error("{0}")]
    Invalid(String),
    /// The thing asked about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Not possible right now (the chain is not followed yet); try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The actor is gone (the system is stopping).
    #[error("actor unavailable: {0}")]
    Mailbox(String),
}

impl From<sea_orm::DbErr> for ActorError {
    fn from(e: sea_orm::DbErr) -> Self {
        ActorError::Store(StoreError::Db(e))
    }
}

impl From<actix::MailboxError> for ActorError {
    fn from(e: actix::MailboxError) -> Self {
        ActorError::Mailbox(e.to_string())
    }
}
