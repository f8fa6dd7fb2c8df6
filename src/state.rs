//! The state shared by the HTTP handlers and GraphQL resolvers.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::actors::notifier::EventFeed;
use crate::config::{ChainConfig, Config};
use crate::daemon::rpc::RpcClient;
use crate::health::Health;
use crate::leader::Leadership;
use crate::metrics::Metrics;

/// Everything a request handler may read. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: DatabaseConnection,
    /// Daemon health, kept current by the probes.
    pub health: Health,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The running actors and daemon client of each chain, by chain name (absent for a chain
    /// whose credentials could not be read).
    pub chains: Arc<HashMap<String, ChainRuntime>>,
    /// Events as the Notifier publishes them.
    pub feed: EventFeed,
    /// What API clients may use at once (daemon calls, WebSocket connections).
    pub clients: Arc<crate::graphql::limits::ClientSlots>,
    /// The pool-wide figures of each chain's current books (see [`crate::graphql::snapshot`]).
    pub snapshots: Arc<crate::graphql::snapshot::PoolSnapshots>,
    /// Answers shared between anonymous clients asking the same query (see
    /// [`crate::graphql::responses`]).
    pub responses: Arc<crate::graphql::responses::ResponseCache>,
}

/// What the API needs of one chain's runtime.
#[derive(Clone)]
pub struct ChainRuntime {
    /// The daemon (read-only calls such as `checkIdentity`).
    pub rpc: Arc<RpcClient>,
    /// Whether this instance leads the chain, and its actors when it does.
    pub leadership: Leadership,
}

/// Well-known chain i-addresses, used until the daemon has told us (`getinfo` → `chainid`).
const KNOWN_CHAIN_IDS: &[(&str, &str)] = &[
    ("VRSC", "i5w5MuNik5NtLcYmNzcvaoixooEebB6MGV"),
    ("VRSCTEST", "iJhCezBExJHvtyH3fGhNnt2NhU4Ztkf2yq"),
];

/// The i-address of a well-known chain.
pub fn known_chain_id(name: &str) -> Option<&'static str> {
    KNOWN_CHAIN_IDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, id)| *id)
}

impl AppState {
    /// The configured chain a `chain` argument names: a currency name (case-insensitive) or
    /// its i-address; `None` = the first configured chain.
    pub async fn resolve_chain(&self, chain: Option<&str>) -> Option<&ChainConfig> {
        let Some(wanted) = chain else {
            return self.config.chains.first();
        };
        if let Some(c) = self.config.chain(wanted) {
            return Some(c);
        }
        for c in &self.config.chains {
            if known_chain_id(&c.name) == Some(wanted) {
                return Some(c);
            }
            let stored = crate::store::chain::get_chain(&self.db, &c.name)
                .await
                .ok()
                .flatten();
            if stored.and_then(|s| s.chain_id).as_deref() == Some(wanted) {
                return Some(c);
            }
        }
        None
    }
}
