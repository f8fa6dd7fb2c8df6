//! ChainWatcher — follows one chain.
//!
//! **State it owns:** the `block` table (every block connected and not disconnected) and the
//! chain's start height.
//!
//! **Messages:** `Wake` (a ZMQ notification, or anyone who knows there is a new block). It
//! sends `BlockConnected` to the SubscriberRegistry, then the StakeTracker (and
//! `BlockDisconnected` in the reverse order), and moves on only when each has committed: one
//! block at a time near the daemon's tip; while catching up from further behind, up to
//! [`BATCH_MAX`] consecutive blocks in one message, which each actor applies in one
//! transaction (what is stored per block is the same).
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

use super::events::BlockProcessed;
use super::events::{BlockConnected, BlockDisconnected, Shutdown};
use super::subscriber_registry::Discover;
use super::{ActorError, ChainFacts};
use crate::config::ChainConfig;
use crate::daemon::Backoff;
use crate::daemon::rpc::{RpcClient, RpcError};
use crate::daemon::types::{Block, OPTION_ID_STAKING, Tx};
use crate::domain::{Height, Sats};
use crate::gate::{BlockGate, Closed};
use crate::health::{Health, SyncStatus};
use crate::metrics::Metrics;
use crate::store::chain::{self as chain_store, BlockRef};

/// The deepest reorganisation the pool follows: verusd's own limit, the coinbase maturity
/// minus one (`MAX_REORG_LENGTH`, 99 on VRSC). Deeper, the pool stops following that chain
/// and unwinds nothing; so a stake is never disconnected once it matured.
fn max_reorg_depth(parts: &WatcherParts) -> i64 {
    parts
        .facts
        .coinbase_maturity()
        .unwrap_or(crate::domain::chain::COINBASE_MATURITY)
        - 1
}

/// An actor that follows the chain block by block.
#[derive(Clone)]
pub struct Follower {
    /// Where connected blocks go.
    pub connected: Recipient<BlockConnected>,
    /// Where disconnected blocks go.
    pub disconnected: Recipient<BlockDisconnected>,
}

impl Follower {
    /// The follower `actor`.
    pub fn of<A>(actor: &Addr<A>) -> Follower
    where
        A: Actor + Handler<BlockConnected> + Handler<BlockDisconnected>,
        A::Context: actix::dev::ToEnvelope<A, BlockConnected>
            + actix::dev::ToEnvelope<A, BlockDisconnected>,
    {
        Follower {
            connected: actor.clone().recipient(),
            disconnected: actor.clone().recipient(),
        }
    }
}

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
    /// The database, for the block records (`store::connect_blocks`).
    pub blocks_db: DatabaseConnection,
    /// The daemon.
    pub rpc: Arc<RpcClient>,
    /// The actors that follow the chain block by block, in the order a block reaches them
    /// (the registry, then the tracker, which reads what the registry keeps); a disconnected
    /// block goes to them in the reverse order.
    pub followers: Vec<Follower>,
    /// The registry, asked to find the pool's identities before the first block.
    pub discover: Recipient<Discover>,
    /// Told after every actor committed a block (the PayoutManager).
    pub processed: Recipient<BlockProcessed>,
    /// Health for `/healthz`.
    pub health: Health,
    /// Metrics.
    pub metrics: Metrics,
    /// Closed while a block is processed at the tip: the API's new work waits at it.
    pub gate: BlockGate,
    /// The last network staking supply asked, and when.
    pub network_supply: Arc<std::sync::Mutex<Option<(Instant, Sats)>>>,
    /// Whether a `getmininginfo` for it is under way (beside the blocks, never before one).
    pub network_supply_asking: Arc<std::sync::atomic::AtomicBool>,
    /// What the watcher learns about the chain for the other actors (coinbase maturity).
    pub facts: ChainFacts,
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
    // Whether a block notification (ZMQ) woke the loop: the block it announced is processed
    // with the API's new work held at the gate from the first call on (src/gate.rs).
    let mut woken = false;
    // What the last passes learnt (hints: see [`sync`]).
    let mut known = Known::default();
    loop {
        let closed = woken.then(|| parts.gate.close());
        match sync(&parts, closed, &mut known).await {
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
        woken = tokio::select! {
            () = wake.notified() => true,
            () = tokio::time::sleep(poll) => false,
        };
        known.woken_at = woken.then(Instant::now);
    }
}

/// First contact: refuse ID-staking chains, learn the chain id, fix the start height,
/// discover subscribers.
async fn prepare(parts: &WatcherParts) -> Result<Prepared, ActorError> {
    let name = &parts.chain.name;
    let info = parts.rpc.get_info().await?;
    // Asked by i-address, so a configured name that differs from the daemon's still works.
    let mut block_time = None;
    match parts.rpc.get_currency(&info.chainid).await {
        Ok(currency) if currency.options & OPTION_ID_STAKING != 0 => {
            let reason = format!(
                "chain {name} is an ID-staking chain (getcurrency options bit 0x4): every identity stakes equally there, so work weighted by value would be wrong; coinstaker refuses to run it. Remove its [[chain]] section"
            );
            log::error!("{reason}");
            parts.health.set_refused(name, reason);
            return Ok(Prepared::Refused);
        }
        Ok(currency) => block_time = currency.blocktime,
        Err(RpcError::NotFound { .. } | RpcError::Rpc { .. }) => {
            log::warn!(
                "chain {name}: getcurrency does not know {}; cannot check for ID staking",
                info.chainid
            );
        }
        Err(e) => return Err(e.into()),
    }
    let (coinbase, source) = match parts.chain.coinbase_maturity {
        Some(c) => (i64::from(c), "configured"),
        None => (
            crate::domain::chain::coinbase_maturity(block_time),
            "derived from the chain's block time",
        ),
    };
    if i64::from(parts.chain.maturity) < coinbase {
        let reason = format!(
            "chain {name}: its coinbase maturity is {coinbase} blocks ({source}), above maturity = {}: rewards could still be orphaned or taken by StakeGuard when the pool splits them. Set maturity to at least {coinbase} in its [[chain]] section",
            parts.chain.maturity
        );
        log::error!("{reason}");
        parts.health.set_refused(name, reason);
        return Ok(Prepared::Refused);
    }
    parts.facts.set_coinbase_maturity(coinbase);
    log::info!("chain {name}: coinbase maturity {coinbase} blocks ({source})");
    chain_store::ensure_chain(&parts.db, name).await?;
    chain_store::set_chain_id(&parts.db, name, &info.chainid).await?;
    if chain_store::tip(&parts.db, name).await?.is_none() {
        let wanted = parts.chain.start_height.map_or(info.blocks, i64::from);
        let start = chain_store::fix_start_height(&parts.db, name, wanted).await?;
        log::info!("chain {name}: processing starts at height {start}");
    }
    parts.discover.send(Discover).await??;
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

/// How long one `getmininginfo` answer stands for the network's staking supply before it is
/// asked again: blocks come a minute apart, so each live block normally asks; a burst of
/// blocks asks once.
const NETWORK_SUPPLY_FRESH: Duration = Duration::from_secs(10);
/// An answer older than this (the daemon has not answered since) is no longer used.
const NETWORK_SUPPLY_STALE: Duration = Duration::from_secs(600);

/// The network's staking supply as the daemon last reported it, for the block being
/// processed at the tip. Nothing waits for the daemon here: an answer older than
/// [`NETWORK_SUPPLY_FRESH`] is used as it is while a new one is asked beside the block (it
/// serves the next block); only the very first block asks and waits. `None` when the daemon
/// has not answered for [`NETWORK_SUPPLY_STALE`].
async fn network_supply(parts: &WatcherParts) -> Option<Sats> {
    let cached = parts.network_supply.lock().ok().and_then(|c| *c);
    match cached {
        Some((at, supply)) => {
            if at.elapsed() >= NETWORK_SUPPLY_FRESH {
                ask_network_supply(parts);
            }
            (at.elapsed() < NETWORK_SUPPLY_STALE).then_some(supply)
        }
        None => fetch_network_supply(parts).await,
    }
}

/// Asks `getmininginfo` and keeps the answer.
async fn fetch_network_supply(parts: &WatcherParts) -> Option<Sats> {
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

/// Asks `getmininginfo` in the background (once at a time).
fn ask_network_supply(parts: &WatcherParts) {
    use std::sync::atomic::Ordering;
    if parts.network_supply_asking.swap(true, Ordering::AcqRel) {
        return;
    }
    let parts = parts.clone();
    actix::spawn(async move {
        fetch_network_supply(&parts).await;
        parts.network_supply_asking.store(false, Ordering::Release);
    });
}

/// Records how the pool follows the chain, logging each change once.
fn report_sync(parts: &WatcherParts, status: SyncStatus) {
    let name = &parts.chain.name;
    parts.metrics.set_sync(name, &status);
    let previous = parts.health.set_sync(name, status.clone());
    if std::mem::discriminant(&previous) == std::mem::discriminant(&status) {
        return;
    }
    match &status {
        SyncStatus::Following => log::info!(
            "chain {name}: following the daemon's chain again ({})",
            previous.reason().unwrap_or_default()
        ),
        SyncStatus::Behind { .. } => log::warn!(
            "chain {name}: {}: it reindexes, was restarted from an older copy or is a fail-over node still syncing. Its blocks match the pool's, so nothing is undone; the pool waits and changes nothing until the daemon is back at the processed height",
            status.reason().unwrap_or_default()
        ),
        SyncStatus::Stopped { reason } => log::error!("chain {name}: {reason}"),
    }
}

/// Processes every height up to the daemon's tip, handling reorganisations. A daemon whose
/// tip is below the processed height is *behind* as long as its block at its tip is ours
/// (architecture §6): nothing is undone then. Only a differing hash starts a reorganisation, from
/// the fork point found by comparing hashes downwards, and only when it is no deeper than
/// verusd's own limit.
///
/// `closed` holds the API's gate closed (the loop was woken by a block): it is opened as soon
/// as there turns out to be nothing to process, or the pool is far behind (catching up does
/// not hold the API); a block found by the poll instead closes it when it is processed.
///
/// `known` is what the last calls learnt; this call updates it. Woken by a block, the block
/// above the height processed last is asked for at once, while the daemon's tip and the
/// stored chain are read and compared (1.5–2.5 ms at the tip, BENCHMARKS.md, fifteenth round):
/// the checks below decide as before whether it is the block to apply, and it is dropped
/// otherwise.
async fn sync(
    parts: &WatcherParts,
    mut closed: Option<Closed>,
    known: &mut Known,
) -> Result<(), ActorError> {
    let name = &parts.chain.name;
    // Set again only where this pass ends having processed up to the daemon's tip.
    let clean = std::mem::take(&mut known.clean);
    let mut ahead = Ahead::new(Arc::clone(&parts.rpc));
    if let (Some(_), Some(h)) = (&closed, known.processed) {
        ahead.ask(h + 1, h + 1);
    }
    let tip = i64::try_from(parts.rpc.get_block_count().await?).unwrap_or(i64::MAX);
    // Fixed once, when the first block is processed (`prepare`): read until it is set.
    let start = match known.start {
        Some(start) => start,
        None => {
            let start = chain_store::get_chain(&parts.db, name)
                .await?
                .and_then(|c| c.start_height);
            known.start = start;
            start.unwrap_or(0)
        }
    };
    let mut stored = chain_store::tip(&parts.db, name).await?;
    known.processed = stored.as_ref().map(|s| s.height);
    if let Some(s) = stored.clone() {
        // Does the daemon have our block at the highest height both chains reach?
        let h = s.height.min(tip);
        let ours = if h == s.height {
            Some(s.hash.clone())
        } else {
            chain_store::block_at(&parts.db, name, h)
                .await?
                .map(|b| b.hash)
        };
        let same = match ours {
            Some(ours) => parts.rpc.get_block_hash(h).await? == ours,
            // Below the first block the pool processed: nothing to compare, nothing to undo.
            None => true,
        };
        if !same {
            match reorganise(parts, &s, h - 1).await? {
                Some(t) => stored = t,
                None => return Ok(()),
            }
        } else if s.height > tip {
            report_sync(
                parts,
                SyncStatus::Behind {
                    daemon_tip: tip,
                    processed_height: s.height,
                },
            );
            parts.metrics.set_lag(name, tip, s.height);
            return Ok(());
        }
    }
    // An actor that committed blocks the watcher did not record yet (the process stopped
    // after its commit): the first batch reaches its height, so it finds its cursor inside
    // the batch and skips what it applied, rather than undoing and redoing it (with events
    // about a disconnection that did not happen) because a batch ended below it.
    // A daemon below that height (restarted from an older copy, reindexing) is waited for,
    // as when it is below the recorded tip. After a pass that processed up to the tip, every
    // block an actor committed was recorded: nothing to read.
    let mut resume = if clean {
        None
    } else {
        chain_store::highest_cursor(&parts.db, name)
            .await?
            .filter(|&h| h > stored.as_ref().map_or(start - 1, |s| s.height))
    };
    if let Some(r) = resume.filter(|&r| r > tip) {
        report_sync(
            parts,
            SyncStatus::Behind {
                daemon_tip: tip,
                processed_height: r,
            },
        );
        return Ok(());
    }
    report_sync(parts, SyncStatus::Following);
    let began = Instant::now();
    let mut last_log = Instant::now();
    let mut done = 0u64;
    loop {
        let next = stored.as_ref().map_or(start, |b| b.height + 1);
        if next > tip {
            break;
        }
        if tip - next + 1 >= BATCH_BEHIND {
            closed = None;
        } else if closed.is_none() {
            closed = Some(parts.gate.close());
        }
        let block_started = Instant::now();
        let block = Arc::new(ahead.take(next, tip).await?);
        if let Some(s) = stored.clone()
            && block.previousblockhash.as_deref() != Some(s.hash.as_str())
        {
            match reorganise(parts, &s, s.height).await? {
                Some(t) => {
                    stored = t;
                    continue;
                }
                None => return Ok(()),
            }
        }
        // Far behind, the blocks that follow are applied with this one, in one transaction
        // per actor (see [`BATCH_BEHIND`]); a block that does not follow the one before ends
        // the batch, and is checked against the stored chain on its own turn.
        let mut txs = block.tx.len();
        let mut blocks = vec![block];
        let reach = resume.take().unwrap_or(next);
        let far = tip - next + 1 >= BATCH_BEHIND;
        if far || reach > next {
            while next + (blocks.len() as i64) <= tip
                && (far && (blocks.len() as i64) < BATCH_MAX && txs < WINDOW_TXS
                    || next + (blocks.len() as i64) <= reach)
            {
                let height = next + blocks.len() as i64;
                let following = ahead.take(height, tip).await?;
                let follows = blocks.last().is_some_and(|b| {
                    following.previousblockhash.as_deref() == Some(b.hash.as_str())
                });
                if !follows {
                    ahead.discard();
                    break;
                }
                txs += following.tx.len();
                blocks.push(Arc::new(following));
            }
        }
        let last = blocks.len() as i64 + next - 1;
        // At the tip, the network's staking supply as the daemon last reported it (asked
        // beside the blocks, never in front of one): kept with the block's statistics for
        // the luck metric. Behind the tip it is not the block's.
        let network_staking_supply = if last == tip {
            network_supply(parts).await
        } else {
            None
        };
        let message = BlockConnected {
            blocks: blocks.clone(),
            network_staking_supply,
        };
        let fetched = block_started.elapsed();
        let mut applied = Vec::with_capacity(parts.followers.len());
        for follower in &parts.followers {
            follower.connected.send(message.clone()).await??;
            applied.push(block_started.elapsed());
        }
        let records: Vec<BlockRef> = blocks
            .iter()
            .map(|b| BlockRef {
                height: b.height,
                hash: b.hash.clone(),
                prev_hash: b.previousblockhash.clone().unwrap_or_default(),
            })
            .collect();
        chain_store::insert_blocks(&parts.blocks_db, name, &records).await?;
        parts.metrics.set_processed_height(name, last);
        // A batch's time shared among its blocks.
        let each = block_started.elapsed().as_secs_f64() / records.len() as f64;
        for _ in &records {
            parts.metrics.observe_block(name, each);
        }
        parts.metrics.set_lag(name, tip, last);
        if log::log_enabled!(log::Level::Debug) {
            let woken = known.woken_at.take().map_or(String::new(), |w| {
                format!(
                    " ({:.1} ms after the notification woke the watcher)",
                    block_started.saturating_duration_since(w).as_secs_f64() * 1000.0
                )
            });
            log::debug!(
                "chain {name}: blocks {next}..={last} in {:.1} ms{woken}: fetched at {:.1}, applied by each actor at {:?}",
                block_started.elapsed().as_secs_f64() * 1000.0,
                fetched.as_secs_f64() * 1000.0,
                applied
                    .iter()
                    .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
                    .collect::<Vec<_>>()
            );
        }
        stored = records.into_iter().last();
        known.processed = stored.as_ref().map(|s| s.height);
        done += blocks.len() as u64;
        if last_log.elapsed() > Duration::from_secs(10) && tip > last {
            let rate = done as f64 / began.elapsed().as_secs_f64().max(0.001);
            log::info!(
                "chain {name}: catching up: height {last}, {rate:.0} blocks/s, {} to go",
                tip - last
            );
            last_log = Instant::now();
        }
    }
    if let Some(s) = &stored {
        parts.metrics.set_lag(name, tip, s.height);
        // At the daemon's tip: payments can move (while catching up they wait anyway).
        if done > 0 {
            parts.processed.do_send(BlockProcessed { height: s.height });
        }
    }
    if done > 1 {
        log::info!(
            "chain {name}: processed {done} blocks up to height {tip} in {:.1}s",
            began.elapsed().as_secs_f64()
        );
    }
    known.clean = true;
    Ok(())
}

/// What the watcher's passes ([`sync`]) learn and pass on to the next: hints that save it
/// reads, never trusted for what it stores.
#[derive(Debug, Default)]
struct Known {
    /// The height the last pass left processed.
    processed: Option<Height>,
    /// The chain's start height, once it is set.
    start: Option<Height>,
    /// Whether the last pass processed up to the daemon's tip without an error: then no
    /// actor committed a block the watcher did not record.
    clean: bool,
    /// When a block notification woke the loop for this pass (for the debug log).
    woken_at: Option<Instant>,
}

/// Blocks asked for by height, [`AHEAD_WINDOW`] in one batch of `getblock "<height>" 2`
/// (verusd takes a decimal height in place of a hash), the next window asked while the current
/// one is processed. At the tip a window is the one block. Nothing here trusts the order of
/// the chain: each block's `previousblockhash` is still checked against the stored block below
/// it, and a block that does not follow discards the window.
struct Ahead {
    rpc: Arc<RpcClient>,
    /// Fetched blocks, consecutive heights.
    blocks: std::collections::VecDeque<Block<Tx>>,
    /// The window after `blocks` under way: its first height and the request.
    pending: Option<(Height, BlocksRequest)>,
    /// How many blocks the next window asks for: [`AHEAD_WINDOW`], fewer when the last
    /// window's blocks were large (see [`WINDOW_TXS`]).
    window: i64,
}

/// A window of blocks being fetched.
type BlocksRequest = tokio::task::JoinHandle<Result<Vec<Block<Tx>>, RpcError>>;

/// How many blocks from the daemon's tip the watcher starts applying several blocks in one
/// transaction per actor; nearer the tip, each block commits on its own.
const BATCH_BEHIND: i64 = 10;

/// The most blocks applied in one transaction per actor (and about [`WINDOW_TXS`]
/// transactions).
const BATCH_MAX: i64 = 32;

/// Blocks a catch-up asks for in one request, at most.
const AHEAD_WINDOW: i64 = 32;

/// About how many transactions a window of blocks (and a batch applied in one transaction)
/// holds: a window of large blocks asks for fewer next time, so memory follows this and not
/// the size of the blocks (32 blocks of 1,000 transactions each, parsed, and the next window
/// under way, raised the pool's peak memory by about 190 MiB).
const WINDOW_TXS: usize = 4_000;

impl Ahead {
    fn new(rpc: Arc<RpcClient>) -> Ahead {
        Ahead {
            rpc,
            blocks: std::collections::VecDeque::new(),
            pending: None,
            window: AHEAD_WINDOW,
        }
    }

    /// The main chain's block at `next`, while the daemon's tip is `tip`.
    async fn take(&mut self, next: Height, tip: Height) -> Result<Block<Tx>, RpcError> {
        if self.blocks.front().is_some_and(|b| b.height != next) {
            // The chain moved (a reorganisation): what was fetched ahead is no longer wanted.
            self.discard();
        }
        if self.blocks.is_empty() {
            let fetched = match self.pending.take() {
                Some((from, request)) if from == next => match request.await {
                    Ok(Ok(blocks)) => blocks,
                    // A request whose task did not finish, or that failed (one made before
                    // the daemon's tip was known may have asked too early), is made again.
                    Ok(Err(_)) | Err(_) => {
                        fetch_window(&self.rpc, next, window_end(next, tip, self.window)).await?
                    }
                },
                _ => {
                    self.discard();
                    fetch_window(&self.rpc, next, window_end(next, tip, self.window)).await?
                }
            };
            self.window = window_for(&fetched);
            self.blocks.extend(fetched);
        }
        let block = self.blocks.pop_front().ok_or_else(|| RpcError::Decode {
            method: "getblock".into(),
            detail: format!("no block at height {next}"),
        })?;
        if self.blocks.is_empty() && self.pending.is_none() && next < tip {
            let from = next + 1;
            self.ask(from, window_end(from, tip, self.window));
        }
        Ok(block)
    }

    /// Asks for the blocks at `from..=to` in the background, for a later [`Ahead::take`] of
    /// `from` (nothing fetched yet, nothing under way).
    fn ask(&mut self, from: Height, to: Height) {
        let rpc = Arc::clone(&self.rpc);
        self.pending = Some((
            from,
            actix::spawn(async move { fetch_window(&rpc, from, to).await }),
        ));
    }

    /// Drops what was fetched ahead.
    fn discard(&mut self) {
        self.blocks.clear();
        if let Some((_, request)) = self.pending.take() {
            request.abort();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.discard();
    }
}

/// How many blocks to ask for after `fetched`: about [`WINDOW_TXS`] transactions' worth at
/// their average size, from 1 to [`AHEAD_WINDOW`].
fn window_for<T>(fetched: &[Block<T>]) -> i64 {
    let txs: usize = fetched.iter().map(|b| b.tx.len()).sum();
    let per_block = txs.div_ceil(fetched.len().max(1)).max(1);
    i64::try_from(WINDOW_TXS / per_block)
        .unwrap_or(AHEAD_WINDOW)
        .clamp(1, AHEAD_WINDOW)
}

fn window_end(from: Height, tip: Height, window: i64) -> Height {
    (from + window - 1).min(tip)
}

/// The blocks at `from..=to`, in one batch; it stops at the first height the daemon does not
/// answer (its chain got shorter), and fails only when it has not even the first.
async fn fetch_window(
    rpc: &RpcClient,
    from: Height,
    to: Height,
) -> Result<Vec<Block<Tx>>, RpcError> {
    let params: Vec<(String, i32)> = (from..=to).map(|h| (h.to_string(), 2)).collect();
    let replies = rpc.call_batch::<Block<Tx>, _>("getblock", &params).await?;
    let mut blocks = Vec::with_capacity(replies.len());
    for (h, reply) in (from..=to).zip(replies) {
        match reply {
            Ok(block) if block.height == h => blocks.push(block),
            Ok(block) => {
                if blocks.is_empty() {
                    return Err(RpcError::Decode {
                        method: "getblock".into(),
                        detail: format!("asked for height {h}, got {}", block.height),
                    });
                }
                break;
            }
            Err(e) if blocks.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(blocks)
}

/// The highest height at or below `from` where the daemon's main chain and the pool's blocks
/// agree, looking no further down than `floor`; `None` when they differ all the way down.
async fn fork_point(
    parts: &WatcherParts,
    from: Height,
    floor: Height,
) -> Result<Option<Height>, ActorError> {
    const STEP: i64 = 16;
    let name = &parts.chain.name;
    let mut high = from;
    while high >= floor {
        let low = (high - STEP + 1).max(floor);
        let ours = chain_store::blocks_between(&parts.db, name, low, high).await?;
        let heights: Vec<(Height,)> = (low..=high).rev().map(|h| (h,)).collect();
        let theirs = parts
            .rpc
            .call_batch::<String, _>("getblockhash", &heights)
            .await?;
        let theirs: Vec<(Height, String)> = heights
            .iter()
            .zip(theirs)
            .map(|((h,), r)| r.map(|hash| (*h, hash)))
            .collect::<Result<_, _>>()?;
        if let Some(h) = highest_common(&ours, &theirs) {
            return Ok(Some(h));
        }
        high = low - 1;
    }
    Ok(None)
}

/// The highest height at which both lists name the same block (a pure decision, unit-tested).
pub fn highest_common(ours: &[BlockRef], theirs: &[(Height, String)]) -> Option<Height> {
    let ours: std::collections::HashMap<Height, &str> =
        ours.iter().map(|b| (b.height, b.hash.as_str())).collect();
    theirs
        .iter()
        .filter(|(h, hash)| ours.get(h).is_some_and(|o| *o == hash))
        .map(|(h, _)| *h)
        .max()
}

/// How deep a reorganisation from the pool's tip `top` to the fork point `fork` goes,
/// counted from the highest block the pool held when this reorganisation started
/// (`unwind_from`, kept in the database across calls and restarts), so that a retry never
/// unwinds the limit again.
pub fn reorg_depth(top: Height, unwind_from: Option<Height>, fork: Height) -> i64 {
    top.max(unwind_from.unwrap_or(top)) - fork
}

/// Unwinds the pool's blocks above the fork point below `from` (the daemon's chain differs
/// there), or refuses when it is deeper than the limit. Returns the new processed tip, or
/// `None` when the pool stopped following this chain.
async fn reorganise(
    parts: &WatcherParts,
    top: &BlockRef,
    from: Height,
) -> Result<Option<Option<BlockRef>>, ActorError> {
    let name = &parts.chain.name;
    let start = chain_store::get_chain(&parts.db, name).await?;
    let unwind_from = start.as_ref().and_then(|c| c.unwind_from);
    let start_height = start.and_then(|c| c.start_height).unwrap_or(0);
    let origin = top.height.max(unwind_from.unwrap_or(top.height));
    let limit = max_reorg_depth(parts);
    // Looking further down than the limit allows is pointless: refused anyway.
    let floor = start_height.max(origin - limit - 1);
    let fork = fork_point(parts, from, floor).await?.unwrap_or(floor - 1);
    let depth = reorg_depth(top.height, unwind_from, fork);
    if depth > limit {
        report_sync(
            parts,
            SyncStatus::Stopped {
                reason: format!(
                    "the daemon's chain left the pool's more than {limit} blocks below height {origin}, deeper than verusd itself accepts: the daemon follows another chain or was pointed at another network. The pool unwinds nothing and stops following until the daemon's chain meets its own again; check the daemon (its chain, its data directory)"
                ),
            },
        );
        return Ok(None);
    }
    log::warn!(
        "chain {name}: reorganisation: the daemon's chain leaves the pool's above height {fork}; disconnecting {} block(s) from height {}",
        top.height - fork,
        top.height
    );
    chain_store::set_unwind_from(&parts.db, name, Some(origin)).await?;
    let mut stored = Some(top.clone());
    while let Some(s) = stored.clone().filter(|s| s.height > fork) {
        stored = disconnect(parts, &s).await?;
    }
    chain_store::set_unwind_from(&parts.db, name, None).await?;
    Ok(Some(stored))
}

async fn disconnect(parts: &WatcherParts, s: &BlockRef) -> Result<Option<BlockRef>, ActorError> {
    let name = &parts.chain.name;
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
    for follower in parts.followers.iter().rev() {
        follower.disconnected.send(message.clone()).await??;
    }
    chain_store::delete_block(&parts.db, name, s.height).await?;
    Ok(chain_store::tip(&parts.db, name).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holds_about_window_txs_transactions() {
        let blocks = |n: usize, txs: usize| -> Vec<Block<String>> {
            (0..n)
                .map(|h| {
                    serde_json::from_value(serde_json::json!({
                        "hash": format!("h{h}"), "validationtype": "work", "confirmations": 1,
                        "height": h, "time": 0, "tx": vec!["t"; txs],
                    }))
                    .unwrap_or_else(|e| panic!("{e}"))
                })
                .collect()
        };
        assert_eq!(window_for(&blocks(32, 10)), AHEAD_WINDOW, "small blocks");
        assert_eq!(window_for(&blocks(32, 200)), 20, "4,000 / 200");
        assert_eq!(window_for(&blocks(4, 1_000)), 4, "4,000 / 1,000");
        assert_eq!(window_for(&blocks(1, 50_000)), 1, "at least one");
        assert_eq!(window_for(&blocks(0, 0)), AHEAD_WINDOW, "nothing fetched");
    }

    fn ours(blocks: &[(Height, &str)]) -> Vec<BlockRef> {
        blocks
            .iter()
            .map(|(h, hash)| BlockRef {
                height: *h,
                hash: (*hash).to_owned(),
                prev_hash: String::new(),
            })
            .collect()
    }

    #[test]
    fn the_fork_is_the_highest_block_both_chains_name() {
        let pool = ours(&[(12, "c"), (11, "b"), (10, "a")]);
        let daemon = |v: &[(Height, &str)]| -> Vec<(Height, String)> {
            v.iter().map(|(h, x)| (*h, (*x).to_owned())).collect()
        };
        assert_eq!(
            highest_common(&pool, &daemon(&[(12, "c2"), (11, "b"), (10, "a")])),
            Some(11)
        );
        assert_eq!(
            highest_common(&pool, &daemon(&[(12, "c2"), (11, "b2"), (10, "a2")])),
            None
        );
        assert_eq!(
            highest_common(&pool, &daemon(&[(13, "d"), (12, "c")])),
            Some(12)
        );
        assert_eq!(highest_common(&[], &daemon(&[(12, "c")])), None);
    }

    #[test]
    fn the_depth_counts_from_where_the_unwinding_started() {
        assert_eq!(reorg_depth(120, None, 110), 10);
        // A retry after 50 blocks were undone: still 100 deep, not 50.
        assert_eq!(reorg_depth(70, Some(120), 20), 100);
        assert_eq!(
            reorg_depth(130, Some(120), 125),
            5,
            "the tip grew past it since"
        );
    }
}
