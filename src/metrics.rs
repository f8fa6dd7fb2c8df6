//! Prometheus metrics, served as text at `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `chain` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabel {
    /// Chain name.
    pub chain: String,
}

/// The `chain` and `by` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainByLabel {
    /// Chain name.
    pub chain: String,
    /// Who holds it: `admin` or `ledger_check`.
    pub by: String,
}

/// The `chain` and `status` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainStatusLabel {
    /// Chain name.
    pub chain: String,
    /// A payment's or stake's status.
    pub status: String,
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The process's metrics; cheap to clone, shared by every part that records something.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    daemon_up: Family<ChainLabel, Gauge>,
    leader: Family<ChainLabel, Gauge>,
    tip_height: Family<ChainLabel, Gauge>,
    processed_height: Family<ChainLabel, Gauge>,
    rpc_failures: Family<ChainLabel, Counter>,
    database_up: Gauge<i64, AtomicI64>,
    subscriptions: Gauge<i64, AtomicI64>,
    webhook_failures: Counter,
    lag: Family<ChainLabel, Gauge>,
    behind: Family<ChainLabel, Gauge>,
    stopped: Family<ChainLabel, Gauge>,
    payouts_held: Family<ChainByLabel, Gauge>,
    staking: Family<ChainLabel, Gauge>,
    network_supply: Family<ChainLabel, Gauge>,
    pool_supply: Family<ChainLabel, Gauge>,
    expected_stakes: Family<ChainLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    found_stakes: Family<ChainLabel, Gauge>,
    zmq_gaps: Family<ChainLabel, Counter>,
    block_seconds: Family<ChainLabel, Histogram>,
    graphql_seconds: Histogram,
    liabilities: Family<ChainLabel, Gauge>,
    spendable: Family<ChainLabel, Gauge>,
    payments: Family<ChainStatusLabel, Gauge>,
    stakes: Family<ChainStatusLabel, Gauge>,
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
        let leader = Family::<ChainLabel, Gauge>::default();
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
            "leader",
            "1 when this instance holds the chain's lease (follows and pays it)",
            leader.clone(),
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
        let lag = Family::<ChainLabel, Gauge>::default();
        let behind = Family::<ChainLabel, Gauge>::default();
        let stopped = Family::<ChainLabel, Gauge>::default();
        let payouts_held = Family::<ChainByLabel, Gauge>::default();
        registry.register(
            "payouts_held",
            "1 when payouts wait: by=\"admin\" (paused by an admin, until an admin resumes) or by=\"ledger_check\" (the ledger check failed; lifts itself when it passes); pool.pausedReason says why",
            payouts_held.clone(),
        );
        registry.register(
            "daemon_behind_blocks",
            "Blocks the daemon's tip is below the processed height on the same chain (a reindex or a fail-over node still syncing); the pool waits while it is above 0",
            behind.clone(),
        );
        registry.register(
            "sync_stopped",
            "1 when the daemon's chain left the pool's deeper than the reorganisation limit and the pool stopped following it",
            stopped.clone(),
        );
        let staking = Family::<ChainLabel, Gauge>::default();
        let network_supply = Family::<ChainLabel, Gauge>::default();
        let pool_supply = Family::<ChainLabel, Gauge>::default();
        let expected_stakes =
            Family::<ChainLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let found_stakes = Family::<ChainLabel, Gauge>::default();
        registry.register(
            "expected_stakes",
            "Stakes the pool was expected to find in the last 1,440 processed blocks whose network staking supply is known (Σ pool supply / network supply over staked blocks); compare with found_stakes for luck",
            expected_stakes.clone(),
        );
        registry.register(
            "found_stakes",
            "Stakes the pool found (not stale) in the same blocks as expected_stakes",
            found_stakes.clone(),
        );
        let zmq_gaps = Family::<ChainLabel, Counter>::default();
        let block_seconds =
            Family::<ChainLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let graphql_seconds = seconds_histogram();
        let liabilities = Family::<ChainLabel, Gauge>::default();
        let spendable = Family::<ChainLabel, Gauge>::default();
        let payments = Family::<ChainStatusLabel, Gauge>::default();
        let stakes = Family::<ChainStatusLabel, Gauge>::default();
        registry.register(
            "chain_lag_blocks",
            "Blocks between the daemon's tip and the processed height",
            lag.clone(),
        );
        registry.register(
            "daemon_staking",
            "1 when getmininginfo says the daemon stakes",
            staking.clone(),
        );
        registry.register(
            "network_staking_supply_sats",
            "The network's estimated staking supply (getmininginfo), in satoshis",
            network_supply.clone(),
        );
        registry.register(
            "pool_staking_supply_sats",
            "The pool's eligible staking supply at the processed height, in satoshis",
            pool_supply.clone(),
        );
        registry.register(
            "zmq_gaps",
            "ZMQ notifications lost (sequence gaps and daemon restarts); the pool catches up by height",
            zmq_gaps.clone(),
        );
        registry.register(
            "block_processing_seconds",
            "Time to process one block: fetch, every actor's commit, record",
            block_seconds.clone(),
        );
        registry.register(
            "graphql_request_seconds",
            "Time to answer a POST /graphql request",
            graphql_seconds.clone(),
        );
        registry.register(
            "liabilities_sats",
            "Owed to subscribers: pending balances plus payments not yet confirmed, in satoshis",
            liabilities.clone(),
        );
        registry.register(
            "pool_spendable_sats",
            "The pool identity's spendable balance at the last payout cycle, in satoshis",
            spendable.clone(),
        );
        registry.register("payments", "Payments by status", payments.clone());
        registry.register("stakes", "The pool's stakes by status", stakes.clone());
        Metrics {
            registry: Arc::new(registry),
            lag,
            behind,
            stopped,
            payouts_held,
            staking,
            network_supply,
            pool_supply,
            expected_stakes,
            found_stakes,
            zmq_gaps,
            block_seconds,
            graphql_seconds,
            liabilities,
            spendable,
            payments,
            stakes,
            daemon_up,
            leader,
            tip_height,
            processed_height,
            rpc_failures,
            database_up,
            subscriptions,
            webhook_failures,
        }
    }

    /// Records the daemon's tip against the processed height.
    pub fn set_lag(&self, chain: &str, tip: i64, processed: i64) {
        self.lag
            .get_or_create(&Self::label(chain))
            .set((tip - processed).max(0));
    }

    /// Records how the pool follows the chain (see [`crate::health::SyncStatus`]).
    pub fn set_sync(&self, chain: &str, status: &crate::health::SyncStatus) {
        use crate::health::SyncStatus;
        let behind = match status {
            SyncStatus::Behind {
                daemon_tip,
                processed_height,
            } => processed_height - daemon_tip,
            _ => 0,
        };
        self.behind.get_or_create(&Self::label(chain)).set(behind);
        self.stopped
            .get_or_create(&Self::label(chain))
            .set(i64::from(matches!(status, SyncStatus::Stopped { .. })));
    }

    /// Records whether payouts wait, and who holds them.
    pub fn set_payouts_held(&self, chain: &str, by_admin: bool, by_check: bool) {
        for (by, held) in [("admin", by_admin), ("ledger_check", by_check)] {
            self.payouts_held
                .get_or_create(&ChainByLabel {
                    chain: chain.to_owned(),
                    by: by.to_owned(),
                })
                .set(i64::from(held));
        }
    }

    /// Records `getmininginfo`: staking, and the network's staking supply.
    pub fn set_mining(&self, chain: &str, staking: Option<bool>, network_supply: i64) {
        if let Some(staking) = staking {
            self.staking
                .get_or_create(&Self::label(chain))
                .set(i64::from(staking));
        }
        self.network_supply
            .get_or_create(&Self::label(chain))
            .set(network_supply);
    }

    /// Counts lost ZMQ notifications.
    pub fn zmq_gap(&self, chain: &str) {
        self.zmq_gaps.get_or_create(&Self::label(chain)).inc();
    }

    /// Records the time one block took.
    pub fn observe_block(&self, chain: &str, seconds: f64) {
        self.block_seconds
            .get_or_create(&Self::label(chain))
            .observe(seconds);
    }

    /// Records the time one GraphQL request took.
    pub fn observe_graphql(&self, seconds: f64) {
        self.graphql_seconds.observe(seconds);
    }

    /// Records the pool identity's spendable balance.
    pub fn set_spendable(&self, chain: &str, sats: i64) {
        self.spendable.get_or_create(&Self::label(chain)).set(sats);
    }

    /// Records what is read from the database at each scrape: the pool's supply, its
    /// liabilities, and payments and stakes by status.
    pub fn set_books(
        &self,
        chain: &str,
        pool_supply: Option<i64>,
        liabilities: i64,
        payments: &[(String, i64)],
        stakes: &[(String, i64)],
    ) {
        if let Some(supply) = pool_supply {
            self.pool_supply
                .get_or_create(&Self::label(chain))
                .set(supply);
        }
        self.liabilities
            .get_or_create(&Self::label(chain))
            .set(liabilities);
        use crate::domain::{PaymentStatus, StakeStatus};
        let every_payment = PaymentStatus::ALL.iter().map(|s| s.as_str());
        let every_stake = StakeStatus::ALL.iter().map(|s| s.as_str());
        for (family, counts, all) in [
            (&self.payments, payments, every_payment.collect::<Vec<_>>()),
            (&self.stakes, stakes, every_stake.collect::<Vec<_>>()),
        ] {
            // Every status, so one that no row has any more reads 0 (not its last count).
            for status in all {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                family
                    .get_or_create(&ChainStatusLabel {
                        chain: chain.to_owned(),
                        status: status.to_owned(),
                    })
                    .set(n);
            }
        }
    }

    /// Records the luck window: stakes expected and found.
    pub fn set_luck(&self, chain: &str, expected: f64, found: i64) {
        self.expected_stakes
            .get_or_create(&Self::label(chain))
            .set(expected);
        self.found_stakes
            .get_or_create(&Self::label(chain))
            .set(found);
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

    /// Records whether this instance leads the chain.
    pub fn set_leader(&self, chain: &str, leader: bool) {
        self.leader
            .get_or_create(&Self::label(chain))
            .set(i64::from(leader));
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
