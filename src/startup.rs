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

use crate::actors::events::Shutdown;
use crate::actors::graph::ChainParts;
use crate::actors::notifier::Notifier;
use crate::config::Config;
use crate::daemon::rpc::RpcClient;
use crate::graphql;
use crate::health::{DaemonStatus, Health, run_daemon_probe};
use crate::leader::{Leadership, LeaseKeeper};
use crate::metrics::Metrics;
use crate::state::{AppState, ChainRuntime};
use crate::store;

/// A built, bound application; `run` serves until Ctrl-C / SIGTERM.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    state: AppState,
    /// The chain actors' own connections (the API's are in `state`).
    chain_db: sea_orm::DatabaseConnection,
    /// Their block transactions' connections (`store::connect_blocks`).
    blocks_db: sea_orm::DatabaseConnection,
    stoppers: Vec<actix::Recipient<Shutdown>>,
    stop_keepers: tokio::sync::watch::Sender<bool>,
    keepers: Vec<actix_web::rt::task::JoinHandle<()>>,
}

impl Application {
    /// Connects, migrates, starts the daemon probes and binds the HTTP server. Must run inside
    /// an actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        crate::net::install_crypto_provider();
        let config = Arc::new(config);
        // Before any thread is started here: each inherits the CPUs of the thread that
        // starts it, and the API's threads move to the others (`priority::ApiPlacement`).
        let api_placement = crate::priority::ApiPlacement {
            nice: config.http.worker_nice,
            cpus: config.affinity.actors_cpu.and_then(|cpu| {
                match crate::priority::reserve_for_actors(cpu) {
                    Ok(others) => {
                        log::info!("the chain's actors keep CPU {cpu}; the API runs on {others:?}");
                        Some(others)
                    }
                    Err(e) => {
                        log::warn!("affinity.actors_cpu = {cpu} ignored: {e}");
                        None
                    }
                }
            }),
        };
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
        // Closed by the chain followers while they process a block at the tip; the API's new
        // work, and its SQLite statements already running, wait at it (src/gate.rs).
        let block_gate = crate::gate::BlockGate::default();
        // The API reads through connections of its own: however many clients wait for the
        // database, the chain's actors never wait behind them for a connection. (An
        // in-memory SQLite database exists once per connection: it is shared then.)
        let url = config.database.url.expose();
        let api_db = if store::in_memory(url) {
            db.clone()
        } else {
            store::connect_api(
                &config.database,
                api_placement.clone(),
                store::BlockYield {
                    gate: block_gate.clone(),
                    limit: Duration::from_millis(config.http.yield_to_blocks_ms),
                },
            )
            .await
            .with_context(|| format!("cannot connect to the database {}", config.database.url))?
        };

        let health = Health::new(config.chains.iter().map(|c| c.name.as_str()));
        let metrics = Metrics::new();
        let mut runtimes = HashMap::new();
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
                    runtimes.insert(
                        chain.name.clone(),
                        ChainRuntime {
                            rpc,
                            leadership: Leadership::default(),
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
        let notifier = notifier.start();
        stoppers.push(notifier.clone().recipient());
        let chain_db = db.clone();
        // The actors' block transactions, on connections of their own (`store::connect_blocks`).
        let blocks_db = store::connect_blocks(&config.database, &db)
            .await
            .with_context(|| format!("cannot connect to the database {}", config.database.url))?;
        let state = AppState {
            config: Arc::clone(&config),
            db: api_db,
            health,
            metrics,
            chains: Arc::new(runtimes),
            feed,
            clients: Arc::new(graphql::limits::ClientSlots::new(
                &config.http,
                block_gate.clone(),
            )),
            snapshots: Arc::default(),
            responses: Arc::default(),
        };
        // Built once, outside the worker factory: every worker shares the same schema.
        let schema = web::Data::new(graphql::build_schema(state.clone()));
        let shared_state = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            // Runs once on each worker thread as it starts.
            match api_placement.enter() {
                Ok(nice) => log::debug!("HTTP worker thread at nice {nice}"),
                Err(e) => log::warn!(
                    "cannot lower the HTTP worker's priority (http.worker_nice) or move it off the actors' CPU (affinity.actors_cpu): {e}"
                ),
            }
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
        log::info!(
            "listening on http://{addr} (dashboard at /, GraphQL at /graphql, health at /healthz)"
        );

        // Each chain is followed by the instance holding its lease (this one, when it runs
        // alone). A webhook is delivered by the leader of its chain (of the first chain when
        // it has none). A webhook seen for the first time gets the events from now on; one
        // that ran before resumes after the last event it acknowledged.
        let instance = config.cluster.instance.clone().unwrap_or_else(|| {
            if config.http.bind.port() == 0 && config.database.url.backend() != "sqlite" {
                log::warn!(
                    "http.bind has port 0 and cluster.instance is not set: every such instance is named the same; set cluster.instance when several instances share the database"
                );
            }
            crate::leader::default_instance_name(config.http.bind.port())
        });
        let url = config
            .cluster
            .advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let (stop_keepers, stop) = tokio::sync::watch::channel(false);
        let mut keepers = Vec::new();
        // SQLite's write-ahead log is checkpointed here, beside the blocks (`store::connect`).
        keepers.push(actix_web::rt::spawn(store::checkpoint_wal(
            state.db.clone(),
            stop.clone(),
        )));
        let first_chain = config.chains.first().map(|c| c.name.clone());
        for chain in &config.chains {
            let Some(runtime) = state.chains.get(&chain.name) else {
                continue;
            };
            let webhooks = config
                .webhooks
                .iter()
                .filter_map(|hook| {
                    // Chain names are case-insensitive in the config; events carry the
                    // configured spelling of the `[[chain]]` section.
                    let mut hook = hook.clone();
                    hook.chain = hook
                        .chain
                        .as_deref()
                        .and_then(|c| config.chain(c))
                        .map(|c| c.name.clone());
                    let owner = hook.chain.clone().or_else(|| first_chain.clone());
                    (owner.as_deref() == Some(chain.name.as_str())).then_some(hook)
                })
                .collect();
            let keeper = LeaseKeeper {
                parts: ChainParts {
                    chain: Arc::new(chain.clone()),
                    db: chain_db.clone(),
                    blocks_db: blocks_db.clone(),
                    background_db: state.db.clone(),
                    rpc: Arc::clone(&runtime.rpc),
                    health: state.health.clone(),
                    metrics: state.metrics.clone(),
                    gate: block_gate.clone(),
                    webhooks,
                    notifier: notifier.clone().recipient(),
                    events: state.feed.watch(),
                    last_event,
                },
                instance: instance.clone(),
                url: url.clone(),
                lease: config.cluster.lease(),
                leadership: runtime.leadership.clone(),
            };
            let mut first = crate::leader::KeeperState::default();
            let wait = keeper.tick(&mut first).await;
            keepers.push(actix_web::rt::spawn(keeper.run(first, wait, stop.clone())));
        }
        log::info!("instance {instance} ({url})");
        Ok(Application {
            server: server.run(),
            addr,
            state,
            chain_db,
            blocks_db,
            stoppers,
            stop_keepers,
            keepers,
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
        // The keepers stop their chains' actors and release the leases (so another instance
        // takes over at once).
        let _ = self.stop_keepers.send(true);
        for keeper in self.keepers {
            let _ = keeper.await;
        }
        for actor in &self.stoppers {
            actor.do_send(Shutdown);
        }
        // Closing waits for every connection to come back; a bounded wait, so a stop never
        // hangs on one (the process is ending: the server drops what is left).
        let closed = async {
            let _ = self.state.db.clone().close().await;
            let _ = self.blocks_db.clone().close().await;
            self.chain_db.clone().close().await
        };
        if tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .is_err()
        {
            log::warn!("a database connection was still in use after 10 s; stopping without it");
        }
        log::info!("stopped");
        result
    }
}
