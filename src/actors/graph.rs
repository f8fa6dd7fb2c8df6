//! The actor graph of one chain: who sends what to whom, wired in one place and started as one
//! value by the instance that leads the chain (see [`crate::leader`]).
//!
//! ```text
//!  verusd ──ZMQ hashblock──▶ ChainWatcher ──BlockConnected / BlockDisconnected──┐
//!                               │  (registry first, tracker second; undone     │
//!                               │   in reverse)                                ▼
//!                               │                      SubscriberRegistry ── StakeTracker
//!                               │ BlockProcessed                                 │ StakesMatured
//!                               ▼                                                ▼
//!                          PayoutManager ◀─────────────────────────────────────────┘
//!
//!  every actor that commits events ──EventsWritten──▶ Notifier ──▶ subscriptions, webhooks
//! ```
//!
//! The API reaches the registry (subscribe, bans, conditions, fees, minimum payouts) and the
//! PayoutManager (run and pause payouts) through the addresses in [`ChainActors`].

use std::sync::Arc;

use actix::{Actor, Addr, Recipient};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use super::chain_watcher::{ChainWatcher, Follower, Wake, WatcherParts};
use super::events::{EventsWritten, Shutdown};
use super::payout_manager::{PayoutCore, PayoutManager};
use super::stake_tracker::{StakeTracker, TrackerCore};
use super::subscriber_registry::{RegistryCore, SubscriberRegistry};
use super::webhooks::WebhookDeliverer;
use super::{ChainContext, ChainFacts};
use crate::config::{ChainConfig, WebhookConfig};
use crate::daemon::rpc::RpcClient;
use crate::daemon::zmq::ZmqListener;
use crate::gate::BlockGate;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::lease::Fence;

/// Everything needed to start a chain's actors.
pub struct ChainParts {
    /// The chain.
    pub chain: Arc<ChainConfig>,
    /// The database.
    pub db: DatabaseConnection,
    /// The database, for block transactions (`store::connect_blocks`).
    pub blocks_db: DatabaseConnection,
    /// The database, for checks beside the blocks: the API's connections, which on SQLite run
    /// at the API's lower priority and pause while a block is processed (`store::BlockYield`).
    pub background_db: DatabaseConnection,
    /// The daemon.
    pub rpc: Arc<RpcClient>,
    /// Health, for `/healthz`.
    pub health: Health,
    /// Metrics.
    pub metrics: Metrics,
    /// Closed while a block is processed at the tip; the API's new work waits at it.
    pub gate: BlockGate,
    /// The webhooks this chain's leader delivers.
    pub webhooks: Vec<WebhookConfig>,
    /// The Notifier, told after every commit that wrote events.
    pub notifier: Recipient<EventsWritten>,
    /// The Notifier's last published event id (wakes the webhooks).
    pub events: watch::Receiver<i64>,
    /// The last event id when this process started (a new webhook begins after it).
    pub last_event: i64,
}

/// The running actors of a chain.
pub struct ChainActors {
    /// The registry: the API's writes about subscribers and settings.
    pub registry: Addr<SubscriberRegistry>,
    /// The payout manager: the API's payout runs and pauses.
    pub payouts: Addr<PayoutManager>,
    stoppers: Vec<Recipient<Shutdown>>,
    zmq: Option<ZmqListener>,
}

impl ChainActors {
    /// Starts the chain's actors, their writes fenced by `fence`.
    pub async fn start(parts: &ChainParts, fence: &Fence) -> anyhow::Result<ChainActors> {
        let cx = ChainContext {
            chain: Arc::clone(&parts.chain),
            db: parts.db.clone(),
            blocks_db: parts.blocks_db.clone(),
            background_db: parts.background_db.clone(),
            rpc: Arc::clone(&parts.rpc),
            fence: fence.clone(),
            facts: ChainFacts::default(),
            events: parts.notifier.clone(),
            metrics: parts.metrics.clone(),
        };
        let payouts = PayoutManager::new(PayoutCore::new(&cx)).start();
        let mut core = RegistryCore::new(&cx);
        core.load().await?;
        let registry = SubscriberRegistry::new(core).start();
        let tracker = StakeTracker::new(TrackerCore::new(&cx, payouts.clone().recipient())).start();
        let watcher = ChainWatcher::new(WatcherParts {
            chain: Arc::clone(&cx.chain),
            db: cx.db.clone(),
            blocks_db: cx.blocks_db.clone(),
            rpc: Arc::clone(&cx.rpc),
            followers: vec![Follower::of(&registry), Follower::of(&tracker)],
            discover: registry.clone().recipient(),
            processed: payouts.clone().recipient(),
            health: parts.health.clone(),
            metrics: parts.metrics.clone(),
            gate: parts.gate.clone(),
            network_supply: Arc::default(),
            network_supply_asking: Arc::default(),
            facts: cx.facts.clone(),
        })
        .start();
        let mut stoppers: Vec<Recipient<Shutdown>> = vec![
            watcher.clone().recipient(),
            registry.clone().recipient(),
            tracker.recipient(),
            payouts.clone().recipient(),
        ];
        for hook in &parts.webhooks {
            let deliverer = WebhookDeliverer::new(
                hook.clone(),
                parts.db.clone(),
                parts.events.clone(),
                parts.last_event,
                parts.metrics.clone(),
            )
            .start();
            stoppers.push(deliverer.recipient());
        }
        let zmq = match &cx.chain.zmq_block_url {
            Some(url) => Some(spawn_zmq(
                &cx.chain.name,
                url,
                watcher.recipient(),
                parts.metrics.clone(),
            )?),
            None => None,
        };
        Ok(ChainActors {
            registry,
            payouts,
            stoppers,
            zmq,
        })
    }

    /// Stops every actor of the chain (work in flight is abandoned and rolls back).
    pub fn stop(self) {
        for actor in &self.stoppers {
            actor.do_send(Shutdown);
        }
        if let Some(listener) = self.zmq {
            // Joins the listener's thread (it polls with a 250 ms timeout).
            listener.stop();
        }
    }
}

/// Forwards ZMQ notifications of one chain to its watcher as `Wake`s.
fn spawn_zmq(
    chain: &str,
    url: &str,
    watcher: Recipient<Wake>,
    metrics: Metrics,
) -> anyhow::Result<ZmqListener> {
    use anyhow::Context as _;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let listener = ZmqListener::spawn(chain, url, tx)
        .with_context(|| format!("chain {chain}: cannot open the ZMQ socket {url}"))?;
    let name = chain.to_owned();
    actix_web::rt::spawn(async move {
        while let Some(notification) = rx.recv().await {
            if notification.anomaly.is_some() {
                metrics.zmq_gap(&name);
            }
            watcher.do_send(Wake);
        }
    });
    Ok(listener)
}
