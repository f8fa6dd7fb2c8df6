//! ChainWatcher — follows one chain.
//!
//! **State it owns:** the `block` table (every block connected and not disconnected) and the
//! chain's start height.
//!
//! **Messages:** `Wake` (a ZMQ notification, or anyone who knows there is a new block). It
//! sends `BlockConnected` to the SubscriberRegistry, then the StakeTracker (and
//! `BlockDisconnected` in the reverse order), one block at a time, and moves on only when
//! each has committed.
//!
//! **How it follows:** a ZMQ notification is only a wake-up; a `getblockcount` poll every
//! `poll_interval_secs` catches what ZMQ missed. Heights are processed strictly in order from
//! the last processed one (or the start height). Each block's `previousblockhash` is checked
//! against the stored block below it; on a mismatch the stored tip is disconnected (newest
//! first) until the branches meet, then the new branch is connected.
//!
//! **Failures:** daemon down, warming up, a reply that does not parse, a database error: the
//! round is abandoned, logged once, and retried with backoff (1 s to 60 s); the process never
//! exits. A chain whose currency stakes by identity (`getcurrency` option `0x4`) is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use super::ActorError;
use super::events::{BlockConnected, BlockDisconnected, Shutdown};
use super::stake_tracker::StakeTracker;
use super::subscriber_registry::{Discover, SubscriberRegistry};
use crate::config::ChainConfig;
use crate::daemon::Backoff;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::daemon::types::OPTION_ID_STAKING;
use crate::domain::Sats;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::chain::{self as chain_store, BlockRef};

/// Reorganisations deeper than this are refused (verusd refuses beyond 99).
pub const MAX_REORG_DEPTH: usize = 100;

/// Look for new blocks now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Everything the watcher's loop needs.
#[derive(Clone)]
pub struct WatcherParts {
    /// The chain.
    pub chain: Arc<ChainConfig>,
    /// The database.
    pub db: DatabaseConnection,
    /// The daemon.
    pub rpc: Arc<RpcClient>,
    /// Where blocks go first.
    pub registry: Addr<SubscriberRegistry>,
    /// Where blocks go second (and are undone first).
    pub tracker: Addr<StakeTracker>,
    /// Health for `/healthz`.
    pub health: Health,
    /// Metrics.
    pub metrics: Metrics,
    /// The last network staking supply asked, and when.
    pub network_supply: Arc<std::sync::Mutex<Option<(Instant, Sats)>>>,
}

/// The actor.
pub struct ChainWatcher {
    parts: WatcherParts,
    wake: Arc<Notify>,
}

impl ChainWatcher {
    /// A watcher; its loop starts with the actor.
    pub fn new(parts: WatcherParts) -> ChainWatcher {
        ChainWatcher {
            parts,
            wake: Arc::new(Notify::new()),
        }
    }
}

impl Actor for ChainWatcher {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let parts = self.parts.clone();
        let wake = Arc::clone(&self.wake);
        ctx.spawn(actix::fut::wrap_future(run(parts, wake)));
    }
}

impl Handler<Shutdown> for ChainWatcher {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Wake> for ChainWatcher {
    type Result = ();
    fn handle(&mut self, _: Wake, _: &mut Self::Context) {
        self.wake.notify_one();
    }
}

enum Prepared {
    Ready,
    Refused,
}

async fn run(parts: WatcherParts, wake: Arc<Notify>) {
    let name = parts.chain.name.clone();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut last_error = String::new();
    let mut report = |e: &ActorError, backoff: &mut Backoff| {
        let delay = backoff.next_delay();
        let text = e.to_string();
        if text != last_error {
            log::warn!(
                "chain {name}: {text}; retrying with backoff (next try in {}s)",
                delay.as_secs()
            );
            last_error = text;
        }
        delay
    };
    loop {
        match prepare(&parts).await {
            Ok(Prepared::Ready) => break,
            Ok(Prepared::Refused) => return,
            Err(e) => {
                let delay = report(&e, &mut backoff);
                tokio::time::sleep(delay).await;
            }
        }
    }
    backoff.reset();
    let poll = Duration::from_secs(parts.chain.poll_interval_secs);
    let mut staking_checked: Option<Instant> = None;
    loop {
        match sync(&parts).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                let delay = report(&e, &mut backoff);
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        if staking_checked.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            check_staking(&parts).await;
            staking_checked = Some(Instant::now());
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// First contact: refuse ID-staking chains, learn the chain id, fix the start height,
/// discover subscribers.
async fn prepare(parts: &WatcherParts) -> Result<Prepared, ActorError> {
    let name = &parts.chain.name;
    let info = parts.rpc.get_info().await?;
    // Asked by i-address, so a configured name that differs from the daemon's still works.
    match parts.rpc.get_currency(&info.chainid).await {
        Ok(currency) if currency.options & OPTION_ID_STAKING != 0 => {
            let reason = format!(
                "chain {name} is an ID-staking chain (getcurrency options bit 0x4): every identity stakes equally there, so work weighted by value would be wrong; coinstaker refuses to run it. Remove its [[chain]] section"
            );
            log::error!("{reason}");
            parts.health.set_refused(name, reason);
            return Ok(Prepared::Refused);
        }
        Ok(_) => {}
        Err(RpcError::NotFound { .. } | RpcError::Rpc { .. }) => {
            log::warn!(
                "chain {name}: getcurrency does not know {}; cannot check for ID staking",
                info.chainid
            );
        }
        Err(e) => return Err(e.into()),
    }
    chain_store::ensure_chain(&parts.db, name).await?;
    chain_store::set_chain_id(&parts.db, name, &info.chainid).await?;
    if chain_store::tip(&parts.db, name).await?.is_none() {
        let wanted = parts.chain.start_height.map_or(info.blocks, i64::from);
        let start = chain_store::fix_start_height(&parts.db, name, wanted).await?;
        log::info!("chain {name}: processing starts at height {start}");
    }
    parts.registry.send(Discover).await??;
    Ok(Prepared::Ready)
}

async fn check_staking(parts: &WatcherParts) {
    let name = &parts.chain.name;
    if let Ok(info) = parts.rpc.get_mining_info().await {
        parts
            .metrics
            .set_mining(name, info.staking, info.stakingsupply.0.0);
        let warning = (info.staking == Some(false)).then(|| {
            "the daemon is not staking (getmininginfo.staking is false): start verusd with -mint=1 or run `setgenerate true 0`".to_owned()
        });
        let had = parts.health.daemon(name).warnings;
        if had.is_empty() && warning.is_some() {
            log::warn!("chain {name}: {}", warning.as_deref().unwrap_or_default());
        }
        parts
            .health
            .set_warnings(name, warning.into_iter().collect());
    }
}

/// How long one `getmininginfo` answer stands for the network's staking supply: blocks come a
/// minute apart, so each live block normally asks; a burst of blocks asks once.
const NETWORK_SUPPLY_FRESH: Duration = Duration::from_secs(10);

/// The network's staking supply now (`getmininginfo`), asked at most every
/// [`NETWORK_SUPPLY_FRESH`]; `None` when the daemon does not answer.
async fn network_supply(parts: &WatcherParts) -> Option<Sats> {
    let cached = parts
        .network_supply
        .lock()
        .ok()
        .and_then(|c| *c)
        .filter(|(at, _)| at.elapsed() < NETWORK_SUPPLY_FRESH)
        .map(|(_, supply)| supply);
    if cached.is_some() {
        return cached;
    }
    match parts.rpc.get_mining_info().await {
        Ok(info) => {
            let supply = Sats(info.stakingsupply.0.0);
            if let Ok(mut c) = parts.network_supply.lock() {
                *c = Some((Instant::now(), supply));
            }
            Some(supply)
        }
        Err(e) => {
            log::debug!("chain {}: getmininginfo: {e}", parts.chain.name);
            None
        }
    }
}

/// Processes every height up to the daemon's tip, handling reorganisations.
async fn sync(parts: &WatcherParts) -> Result<(), ActorError> {
    let name = &parts.chain.name;
    let tip = i64::try_from(parts.rpc.get_block_count().await?).unwrap_or(i64::MAX);
    let start = chain_store::get_chain(&parts.db, name)
        .await?
        .and_then(|c| c.start_height)
        .unwrap_or(0);
    let mut stored = chain_store::tip(&parts.db, name).await?;
    let mut depth = 0usize;
    let began = Instant::now();
    let mut last_log = Instant::now();
    let mut done = 0u64;
    loop {
        // Our tip above the daemon's: the daemon moved to a shorter branch.
        if let Some(s) = stored.clone().filter(|s| s.height > tip) {
            stored = disconnect(parts, &s, &mut depth).await?;
            continue;
        }
        let next = stored.as_ref().map_or(start, |b| b.height + 1);
        if next > tip {
            break;
        }
        let block_started = Instant::now();
        let hash = parts.rpc.get_block_hash(next).await?;
        let block = Arc::new(parts.rpc.get_block_verbose(&hash).await?);
        if let Some(s) = &stored
            && block.previousblockhash.as_deref() != Some(s.hash.as_str())
        {
            stored = disconnect(parts, &s.clone(), &mut depth).await?;
            continue;
        }
        depth = 0;
        // At the tip, the daemon's staking supply is the network's as of this block: kept
        // with the block's statistics for the luck metric. Behind the tip it is not.
        let network_staking_supply = if next == tip {
            network_supply(parts).await
        } else {
            None
        };
        // The registry first (who is eligible), then the tracker (stakes and work read that).
        let message = BlockConnected {
            block: Arc::clone(&block),
            network_staking_supply,
        };
        parts.registry.send(message.clone()).await??;
        parts.tracker.send(message).await??;
        let record = BlockRef {
            height: next,
            hash,
            prev_hash: block.previousblockhash.clone().unwrap_or_default(),
        };
        chain_store::insert_block(&parts.db, name, &record).await?;
        parts.metrics.set_processed_height(name, next);
        parts
            .metrics
            .observe_block(name, block_started.elapsed().as_secs_f64());
        parts.metrics.set_lag(name, tip, next);
        stored = Some(record);
        done += 1;
        if last_log.elapsed() > Duration::from_secs(10) && tip > next {
            let rate = done as f64 / began.elapsed().as_secs_f64().max(0.001);
            log::info!(
                "chain {name}: catching up: height {next}, {rate:.0} blocks/s, {} to go",
                tip - next
            );
            last_log = Instant::now();
        }
    }
    if let Some(s) = &stored {
        parts.metrics.set_lag(name, tip, s.height);
    }
    if done > 1 {
        log::info!(
            "chain {name}: processed {done} blocks up to height {tip} in {:.1}s",
            began.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn disconnect(
    parts: &WatcherParts,
    s: &BlockRef,
    depth: &mut usize,
) -> Result<Option<BlockRef>, ActorError> {
    let name = &parts.chain.name;
    *depth += 1;
    if *depth > MAX_REORG_DEPTH {
        return Err(ActorError::Invalid(format!(
            "reorganisation deeper than {MAX_REORG_DEPTH} blocks at height {}: refusing to unwind further; check the daemon",
            s.height
        )));
    }
    log::warn!(
        "chain {name}: block {} at height {} left the main chain; disconnecting it",
        s.hash,
        s.height
    );
    // Undone in the reverse order of connecting: the tracker reads what the registry keeps.
    let message = BlockDisconnected {
        height: s.height,
        hash: s.hash.clone(),
        prev_hash: s.prev_hash.clone(),
    };
    parts.tracker.send(message.clone()).await??;
    parts.registry.send(message).await??;
    chain_store::delete_block(&parts.db, name, s.height).await?;
    Ok(chain_store::tip(&parts.db, name).await?)
}
