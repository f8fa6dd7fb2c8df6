//! Builds the application: database and migrations, per-chain start-up, daemon probes, the
//! GraphQL schema and the HTTP server. `Application::build` works on port 0, so tests run
//! many applications side by side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use actix::Actor;
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context as _;

use crate::actors::chain_watcher::{ChainWatcher, Wake, WatcherParts};
use crate::actors::events::Shutdown;
use crate::actors::notifier::Notifier;
use crate::actors::payout_manager::{PayoutCore, PayoutManager};
use crate::actors::stake_tracker::{StakeTracker, TrackerCore};
use crate::actors::subscriber_registry::{RegistryCore, SubscriberRegistry};
use crate::actors::webhooks::WebhookDeliverer;
use crate::config::Config;
use crate::daemon::rpc::RpcClient;
use crate::daemon::zmq::ZmqListener;
use crate::graphql;
use crate::health::{DaemonStatus, Health, run_daemon_probe};
use crate::metrics::Metrics;
use crate::state::{AppState, ChainRuntime};
use crate::store;

/// A built, bound application; `run` serves until Ctrl-C / SIGTERM.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    state: AppState,
    listeners: Vec<ZmqListener>,
    stoppers: Vec<actix::Recipient<Shutdown>>,
}

/// Forwards ZMQ notifications of one chain to its watcher as `Wake`s.
fn spawn_zmq(
    chain: &str,
    url: &str,
    watcher: actix::Addr<ChainWatcher>,
    metrics: Metrics,
) -> anyhow::Result<ZmqListener> {
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

impl Application {
    /// Connects, migrates, starts the daemon probes and binds the HTTP server. Must run inside
    /// an actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        crate::net::install_crypto_provider();
        let config = Arc::new(config);
        log::info!(
            "database: {} ({})",
            config.database.url,
            config.database.url.backend()
        );
        let db = store::connect(&config.database)
            .await
            .with_context(|| format!("cannot connect to the database {}", config.database.url))?;
        store::migrate(&db)
            .await
            .context("cannot apply the database migrations")?;

        let health = Health::new(config.chains.iter().map(|c| c.name.as_str()));
        let metrics = Metrics::new();
        let mut runtimes = HashMap::new();
        let mut listeners = Vec::new();
        let mut stoppers: Vec<actix::Recipient<Shutdown>> = Vec::new();
        for chain in &config.chains {
            store::chain::ensure_chain(&db, &chain.name).await?;
            let next = store::chain::tip(&db, &chain.name)
                .await?
                .map_or(0, |b| b.height + 1);
            if let Some(v) =
                store::settings::sync_with_config(&db, &chain.name, &chain.settings(), next).await?
            {
                log::info!(
                    "chain {}: pool settings from the config file apply from height {} (fee {} %, minimum payout {})",
                    chain.name,
                    v.from_height,
                    v.settings.fee,
                    v.settings.min_payout
                );
            }
            for warning in chain.custody_warnings() {
                log::warn!("{warning}");
            }
            match RpcClient::from_config(chain) {
                Ok(client) => {
                    log::info!("chain {}: daemon RPC at {}", chain.name, client.url());
                    let rpc = Arc::new(client);
                    actix_web::rt::spawn(run_daemon_probe(
                        chain.name.clone(),
                        Arc::clone(&rpc),
                        health.clone(),
                        metrics.clone(),
                        Duration::from_secs(chain.poll_interval_secs),
                    ));
                    let shared = Arc::new(chain.clone());
                    let shared_for_payouts = Arc::clone(&shared);
                    let mut core =
                        RegistryCore::new(Arc::clone(&shared), db.clone(), Arc::clone(&rpc));
                    core.load().await?;
                    let registry = SubscriberRegistry::new(core).start();
                    let tracker =
                        StakeTracker::new(TrackerCore::new(Arc::clone(&shared), db.clone()))
                            .start();
                    let watcher = ChainWatcher::new(WatcherParts {
                        chain: shared,
                        db: db.clone(),
                        rpc: Arc::clone(&rpc),
                        registry: registry.clone(),
                        tracker: tracker.clone(),
                        health: health.clone(),
                        metrics: metrics.clone(),
                    })
                    .start();
                    if let Some(url) = &chain.zmq_block_url {
                        listeners.push(spawn_zmq(
                            &chain.name,
                            url,
                            watcher.clone(),
                            metrics.clone(),
                        )?);
                    }
                    stoppers.push(watcher.clone().recipient());
                    stoppers.push(registry.clone().recipient());
                    stoppers.push(tracker.recipient());
                    let payouts = PayoutManager::new(PayoutCore::new(
                        Arc::clone(&shared_for_payouts),
                        db.clone(),
                        Arc::clone(&rpc),
                        metrics.clone(),
                    ))
                    .start();
                    stoppers.push(payouts.clone().recipient());
                    runtimes.insert(
                        chain.name.clone(),
                        ChainRuntime {
                            rpc,
                            registry,
                            payouts,
                        },
                    );
                }
                Err(e) => {
                    // The process stays up (the API still answers); health says what to fix.
                    log::error!("chain {}: {e}", chain.name);
                    health.set(
                        &chain.name,
                        DaemonStatus {
                            reason: Some(e.to_string()),
                            ..DaemonStatus::default()
                        },
                    );
                }
            }
        }

        // Events written before this start are history, served by replay; the Notifier
        // publishes what comes after.
        let last_event = store::events::last_id(&db).await?;
        let (notifier, feed) = Notifier::new(
            db.clone(),
            last_event,
            config.notifier.buffer,
            Duration::from_millis(config.notifier.poll_interval_ms),
        );
        stoppers.push(notifier.start().recipient());
        // A webhook seen for the first time gets the events from now on; one that ran before
        // resumes after the last event it acknowledged.
        for hook in &config.webhooks {
            // Chain names are case-insensitive in the config; events carry the configured
            // spelling of the `[[chain]]` section.
            let mut hook = hook.clone();
            hook.chain = hook
                .chain
                .as_deref()
                .and_then(|c| config.chain(c))
                .map(|c| c.name.clone());
            let deliverer =
                WebhookDeliverer::new(hook, db.clone(), feed.watch(), last_event, metrics.clone())
                    .start();
            stoppers.push(deliverer.recipient());
        }

        let state = AppState {
            config: Arc::clone(&config),
            db,
            health,
            metrics,
            chains: Arc::new(runtimes),
            feed,
        };
        // Built once, outside the worker factory: every worker shares the same schema.
        let schema = web::Data::new(graphql::build_schema(state.clone()));
        let shared_state = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(crate::http::cors(&shared_state.config.http))
                .configure(|cfg| crate::http::configure(cfg, schema.clone(), shared_state.clone()))
        })
        .shutdown_timeout(5)
        .bind(config.http.bind)
        .with_context(|| format!("cannot listen on {} (http.bind)", config.http.bind))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .context("the HTTP server bound no address")?;
        log::info!("listening on http://{addr} (GraphQL at /graphql, health at /healthz)");
        Ok(Application {
            server: server.run(),
            addr,
            state,
            listeners,
            stoppers,
        })
    }

    /// The address the server listens on (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (database, health), for tests and tools.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that stops the server (and with it, through [`Application::run`], the actors).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (Ctrl-C, SIGTERM or `handle().stop()`).
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        for actor in &self.stoppers {
            actor.do_send(Shutdown);
        }
        for listener in self.listeners {
            listener.stop();
        }
        self.state.db.clone().close().await.ok();
        log::info!("stopped");
        result
    }
}
