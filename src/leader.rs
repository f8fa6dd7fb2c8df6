//! Leadership of a chain: the instance holding the chain's lease (see [`crate::store::lease`])
//! runs its ChainWatcher, SubscriberRegistry, StakeTracker, PayoutManager and webhooks; every
//! other instance on the same database serves the API (subscriptions read the shared event
//! log) and answers mutations with `UNAVAILABLE`, naming the leader.
//!
//! One [`LeaseKeeper`] task per chain takes the lease when it is free or silent, renews it
//! every third of `cluster.lease_secs`, starts the actors when it gets it, and stops them the
//! moment it finds the lease taken over, or when the database has failed every renewal for a
//! whole lease (a renewal that waits for a lock held by a write transaction is not a failure:
//! see [`LeaseKeeper::tick`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::Addr;

use crate::actors::graph::{ChainActors, ChainParts};
use crate::actors::payout_manager::PayoutManager;
use crate::actors::subscriber_registry::SubscriberRegistry;
use crate::store::lease::{self, Fence, Lease};

/// The longest a lease renewal may wait (below SQLite's 5 s busy timeout).
const RENEWAL_TIMEOUT: Duration = Duration::from_secs(4);

/// How often a follower looks at the lease.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What this instance is for one chain.
#[derive(Debug, Clone)]
pub enum Role {
    /// No lease seen yet.
    Starting,
    /// This instance follows and pays the chain.
    Leader {
        /// The registry (writes: subscribe, ban, conditions).
        registry: Addr<SubscriberRegistry>,
        /// The payout manager (writes: run and pause payouts).
        payouts: Addr<PayoutManager>,
    },
    /// Another instance does; mutations go there.
    Follower {
        /// The leader's instance name (empty: none right now).
        leader: String,
        /// Where the leader serves its API.
        leader_url: String,
    },
}

/// This instance's role for one chain, shared with the API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leadership(Arc<RwLock<Role>>);

impl Default for Leadership {
    fn default() -> Self {
        Leadership(Arc::new(RwLock::new(Role::Starting)))
    }
}

impl Leadership {
    /// The current role.
    pub fn role(&self) -> Role {
        match self.0.read() {
            Ok(role) => role.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, role: Role) {
        match self.0.write() {
            Ok(mut r) => *r = role,
            Err(poisoned) => *poisoned.into_inner() = role,
        }
    }

    /// Whether this instance leads the chain now.
    pub fn is_leader(&self) -> bool {
        matches!(self.role(), Role::Leader { .. })
    }

    /// The leader's actors, or why there are none here (for an `UNAVAILABLE` error).
    pub fn actors(&self) -> Result<(Addr<SubscriberRegistry>, Addr<PayoutManager>), String> {
        match self.role() {
            Role::Leader { registry, payouts } => Ok((registry, payouts)),
            Role::Starting => {
                Err("this instance is starting and does not lead the chain yet; try again shortly".into())
            }
            Role::Follower { leader, .. } if leader.is_empty() => Err(
                "no instance leads the chain right now (a takeover is under way); try again shortly".into(),
            ),
            Role::Follower { leader, leader_url } => Err(format!(
                "this instance is a follower: instance {leader} leads the chain; send mutations to {leader_url}"
            )),
        }
    }
}

/// Keeps (or waits for) the lease of one chain.
pub struct LeaseKeeper {
    /// The chain's parts.
    pub parts: ChainParts,
    /// This instance's name.
    pub instance: String,
    /// Where this instance serves its API.
    pub url: String,
    /// The lease duration.
    pub lease: Duration,
    /// Shared with the API.
    pub leadership: Leadership,
}

/// The keeper's state between two looks at the lease.
#[derive(Default)]
pub struct KeeperState {
    /// The actors, their fence, and the last successful renewal, while leading.
    running: Option<(ChainActors, Fence, Instant)>,
    /// The lease as last seen, and since when it has not changed.
    seen: Option<(Lease, Instant)>,
    /// Whether this instance has led the chain since it started.
    led: bool,
    /// The wait after a failure.
    retry: Option<Duration>,
}

impl LeaseKeeper {
    /// One look at the lease: renew it when leading (stopping the actors if it is lost), else
    /// take it when it is free or silent (starting the actors). Returns the time until the
    /// next look. `Application::build` runs the first one itself, so a single instance leads
    /// before it serves.
    pub async fn tick(&self, state: &mut KeeperState) -> Duration {
        let name = self.parts.chain.name.as_str();
        let renew_every = self.lease / 3;
        // A follower looks at the lease this often, so a takeover comes soon after the lease
        // runs out.
        let watch_every = WATCH_EVERY.min(renew_every);
        // Until this instance has led once, a lease under its own name is a previous run's.
        let starting = !state.led;
        let wait = match state.running.take() {
            Some((actors, fence, renewed)) => {
                // Timed from before the call, and bounded: a renewal stuck behind a slow
                // database must not hold the keeper past the lease. The bound is below
                // SQLite's busy timeout (5 s), so a renewal waiting for a lock always ends
                // here as a timeout rather than as SQLite's "database is locked".
                let asked = Instant::now();
                let renewal = tokio::time::timeout(
                    renew_every.min(RENEWAL_TIMEOUT),
                    lease::renew(&self.parts.db, name, &self.instance, fence.epoch),
                )
                .await;
                match renewal {
                    Err(_) => {
                        // The renewal waited for a lock: the lease row (PostgreSQL, MySQL) or
                        // the database (SQLite) is held by a write transaction, most often
                        // one of this instance's own actors committing a big block (10,000
                        // subscribers becoming eligible at one height take seconds). Every
                        // such transaction fences itself on the lease, which also counts as a
                        // renewal, and no other instance can take the lease while it is
                        // held. So waiting is no reason to step down: stepping down would
                        // abort that very transaction, and it would be retried and aborted
                        // again forever. A lease that was really taken over is found by the
                        // next renewal that gets through (`Ok(false)` below), and the fence
                        // keeps a deposed leader from committing anything meanwhile.
                        log::warn!(
                            "chain {name}: the lease renewal got no answer within {:.1} s (a long write transaction holds the lock, or the database is slow or down); trying again",
                            renew_every.min(RENEWAL_TIMEOUT).as_secs_f64()
                        );
                        state.running = Some((actors, fence, renewed));
                    }
                    Ok(Ok(true)) => {
                        state.running = Some((actors, fence, asked));
                    }
                    Ok(Ok(false)) => {
                        log::error!(
                            "chain {name}: instance {} lost the lease (another instance took it over); stopping the chain's actors",
                            self.instance
                        );
                        actors.stop();
                        self.leadership.set(Role::Starting);
                    }
                    Ok(Err(e)) if renewed.elapsed() >= self.lease => {
                        log::error!(
                            "chain {name}: cannot renew the lease for {:.0} s ({e}); stepping down, since another instance may take over",
                            renewed.elapsed().as_secs_f64()
                        );
                        actors.stop();
                        self.leadership.set(Role::Starting);
                    }
                    Ok(Err(e)) => {
                        log::warn!("chain {name}: cannot renew the lease: {e}");
                        state.running = Some((actors, fence, renewed));
                    }
                }
                if state.running.is_some() {
                    renew_every
                } else {
                    watch_every
                }
            }
            None => match self.follow(name, &mut state.seen, starting).await {
                Ok(Some(epoch)) => {
                    let fence = Fence {
                        chain: name.to_owned(),
                        holder: self.instance.clone(),
                        epoch,
                    };
                    match ChainActors::start(&self.parts, &fence).await {
                        Ok(actors) => {
                            let role = Role::Leader {
                                registry: actors.registry.clone(),
                                payouts: actors.payouts.clone(),
                            };
                            log::info!(
                                "chain {name}: instance {} leads the chain (lease epoch {epoch})",
                                self.instance
                            );
                            self.leadership.set(role);
                            state.led = true;
                            // Starting may have taken a while: renew at once.
                            state.running = Some((actors, fence, Instant::now()));
                            state.retry = None;
                            Duration::ZERO
                        }
                        Err(e) => {
                            let wait = state.retry.unwrap_or(Duration::from_secs(1));
                            log::error!(
                                "chain {name}: cannot start the chain's actors: {e:#}; releasing the lease, retrying in {}s",
                                wait.as_secs()
                            );
                            let _ =
                                lease::release(&self.parts.db, name, &self.instance, epoch).await;
                            state.retry = Some((wait * 2).min(Duration::from_secs(60)));
                            wait
                        }
                    }
                }
                Ok(None) => watch_every,
                Err(e) => {
                    log::warn!("chain {name}: cannot read the lease: {e}");
                    Duration::from_secs(1)
                }
            },
        };
        self.parts.metrics.set_leader(name, state.running.is_some());
        wait
    }

    /// Looks at the lease again after `wait`, and so on, until `stop` turns true; then stops
    /// the actors and releases the lease.
    pub async fn run(
        self,
        mut state: KeeperState,
        mut wait: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                // A dropped sender (the application is gone) stops the keeper too.
                changed = stop.changed() => changed.is_err() || *stop.borrow(),
            };
            if stopping {
                break;
            }
            wait = self.tick(&mut state).await;
        }
        let name = &self.parts.chain.name;
        if let Some((actors, fence, _)) = state.running {
            actors.stop();
            match lease::release(&self.parts.db, name, &self.instance, fence.epoch).await {
                Ok(()) => log::info!("chain {name}: lease released"),
                Err(e) => log::warn!("chain {name}: cannot release the lease: {e}"),
            }
        }
    }

    /// One look at the lease as a follower; `Some(epoch)` when this instance took it.
    async fn follow(
        &self,
        name: &str,
        seen: &mut Option<(Lease, Instant)>,
        starting: bool,
    ) -> Result<Option<i64>, crate::store::StoreError> {
        let db = &self.parts.db;
        let current = lease::get(db, name).await?;
        let take = match &current {
            None => true,
            Some(l) if l.holder.is_empty() => true,
            // The same instance restarted (its old process is gone): it takes its lease back
            // once the heartbeat has stood still for a renewal period — a live process of the
            // same name (a misconfiguration) would have renewed by then. Only while starting:
            // an instance that lost the lease waits the whole lease like any other.
            Some(l) if l.holder == self.instance && starting => match seen {
                Some((s, since)) if s == l => since.elapsed() >= self.lease / 3 + WATCH_EVERY,
                _ => {
                    *seen = Some((l.clone(), Instant::now()));
                    false
                }
            },
            Some(l) => match seen {
                Some((s, since)) if s == l => since.elapsed() >= self.lease,
                _ => {
                    *seen = Some((l.clone(), Instant::now()));
                    false
                }
            },
        };
        if let Some(l) = &current {
            self.leadership.set(Role::Follower {
                leader: l.holder.clone(),
                leader_url: l.holder_url.clone(),
            });
        }
        if !take {
            return Ok(None);
        }
        if let Some(l) = &current
            && !l.holder.is_empty()
            && l.holder != self.instance
        {
            log::warn!(
                "chain {name}: the lease of instance {} was not renewed for {} s; taking over",
                l.holder,
                self.lease.as_secs()
            );
        }
        let taken = lease::try_take(db, name, &self.instance, &self.url, current.as_ref()).await?;
        *seen = None;
        Ok(taken)
    }
}

/// This instance's default name: `<hostname>:<configured port>` (the configured port, not the
/// bound one, so an instance restarted with the same config keeps its name).
pub fn default_instance_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{port}")
}
