//! Prometheus metrics, served as text at `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `chain` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabel {
    /// Chain name.
    pub chain: String,
}

/// The process's metrics; cheap to clone, shared by every part that records something.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    daemon_up: Family<ChainLabel, Gauge>,
    tip_height: Family<ChainLabel, Gauge>,
    processed_height: Family<ChainLabel, Gauge>,
    rpc_failures: Family<ChainLabel, Counter>,
    database_up: Gauge<i64, AtomicI64>,
    subscriptions: Gauge<i64, AtomicI64>,
    webhook_failures: Counter,
}

/// Counts one open GraphQL subscription while it lives.
pub struct SubscriptionGuard(Gauge<i64, AtomicI64>);

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("coinstaker");
        let daemon_up = Family::<ChainLabel, Gauge>::default();
        let tip_height = Family::<ChainLabel, Gauge>::default();
        let processed_height = Family::<ChainLabel, Gauge>::default();
        let rpc_failures = Family::<ChainLabel, Counter>::default();
        let database_up = Gauge::<i64, AtomicI64>::default();
        let subscriptions = Gauge::<i64, AtomicI64>::default();
        let webhook_failures = Counter::default();
        registry.register(
            "graphql_subscriptions",
            "Open GraphQL subscriptions",
            subscriptions.clone(),
        );
        registry.register(
            "webhook_failures",
            "Failed webhook delivery attempts (each is retried)",
            webhook_failures.clone(),
        );
        registry.register(
            "daemon_up",
            "1 when the chain's daemon answered the last probe",
            daemon_up.clone(),
        );
        registry.register(
            "daemon_tip_height",
            "The daemon's chain tip height",
            tip_height.clone(),
        );
        registry.register(
            "processed_height",
            "The highest block the pool has processed",
            processed_height.clone(),
        );
        registry.register(
            "rpc_failures",
            "Failed calls to the daemon",
            rpc_failures.clone(),
        );
        registry.register(
            "database_up",
            "1 when the database answered the last check",
            database_up.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            daemon_up,
            tip_height,
            processed_height,
            rpc_failures,
            database_up,
            subscriptions,
            webhook_failures,
        }
    }

    /// Counts a subscription as open until the guard is dropped.
    pub fn subscription_opened(&self) -> SubscriptionGuard {
        self.subscriptions.inc();
        SubscriptionGuard(self.subscriptions.clone())
    }

    /// The number of open subscriptions.
    pub fn open_subscriptions(&self) -> i64 {
        self.subscriptions.get()
    }

    /// Counts a failed webhook attempt.
    pub fn webhook_failure(&self) {
        self.webhook_failures.inc();
    }

    fn label(chain: &str) -> ChainLabel {
        ChainLabel {
            chain: chain.to_owned(),
        }
    }

    /// Records a daemon probe.
    pub fn set_daemon(&self, chain: &str, up: bool, tip: Option<u64>) {
        self.daemon_up
            .get_or_create(&Self::label(chain))
            .set(i64::from(up));
        if let Some(tip) = tip {
            self.tip_height
                .get_or_create(&Self::label(chain))
                .set(i64::try_from(tip).unwrap_or(i64::MAX));
        }
    }

    /// Counts a failed daemon call.
    pub fn rpc_failure(&self, chain: &str) {
        self.rpc_failures.get_or_create(&Self::label(chain)).inc();
    }

    /// Records the processed height of a chain.
    pub fn set_processed_height(&self, chain: &str, height: i64) {
        self.processed_height
            .get_or_create(&Self::label(chain))
            .set(height);
    }

    /// Records whether the database answered.
    pub fn set_database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
