//! StakeTracker — which stakes are the pool's, what they are worth, and who earned them.
//!
//! **State it owns:** the tables `stake`, `credit`, `pool_stats`, and the ledger entries of
//! matured stakes (credits and the pool's keep).
//!
//! **Messages:** `BlockConnected` (after the SubscriberRegistry committed the block) and
//! `BlockDisconnected` (before the registry undoes it) from the ChainWatcher.
//!
//! **Events it writes** (with the change): `STAKE_FOUND`, `STAKE_MATURED`, `STAKE_STALE` (the
//! stake's status says STALE or STAKEGUARD).
//!
//! **The money model** (architecture §2): a staked block whose `postxddest` is a subscriber eligible
//! at that height is a pool stake; it closes the round that started after the previous pool
//! stake that is not STALE or STAKEGUARD. At maturity (`maturity` confirmations) the reward is
//! split by work over the round — derived from the stored outputs and eligibility intervals,
//! never from per-block rows — with each subscriber's fee as in force at the stake's height;
//! the credits, the pool's keep and the MATURED status commit together. A stake by a known
//! identity that is not eligible is a solo stake; the pool identity's own stakes are the pool's.
//!
//! **Failures:** everything of a block (of the blocks of a catch-up batch) is one transaction
//! with the cursor; an error rolls it back and the ChainWatcher retries. No daemon calls.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

use super::events::{BlockConnected, BlockDisconnected, Shutdown};
use super::events::{EventsWritten, StakesMatured};
use super::{ActorError, ChainContext, ChainFacts};
use crate::config::ChainConfig;
use crate::daemon::types::{Block, Tx};
use crate::domain::split::{split, work_over};
use crate::domain::{EventKind, FeeRate, Height, Sats, StakeStatus, Work};
use crate::store::chain as chain_store;
use crate::store::events::{self, NewEvent};
use crate::store::ledger::{self, LedgerKind, Posting};
use crate::store::stakes::{self, Credit, Stake};
use crate::store::{settings, stats, subscribers, utxos};

/// The tracker's name in `actor_cursor`.
pub const ACTOR: &str = "stakes";

/// Whose a staked block is (architecture §2, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StakeKind {
    /// Staked by an eligible subscriber: it closes the round, split by work at maturity.
    Pool,
    /// Staked by an identity the pool follows that was not eligible at that height: its
    /// reward minus the fee goes to that identity alone.
    Solo,
    /// Staked by the pool identity, or by an address the pool does not know: the pool's.
    PoolOwn,
}

/// The kind of a stake whose reward went to the pool identity.
pub fn kind_of_stake(by_pool_identity: bool, eligible: bool, known: bool) -> StakeKind {
    match (by_pool_identity, eligible, known) {
        (true, _, _) | (false, false, false) => StakeKind::PoolOwn,
        (false, true, _) => StakeKind::Pool,
        (false, false, true) => StakeKind::Solo,
    }
}

/// Whether the reward of a stake at `stake_height`, spent in the block at `height`, was taken
/// by a StakeGuard proof: only such a proof can spend a reward younger than the chain's
/// coinbase maturity.
pub fn taken_by_stakeguard(
    spent: bool,
    stake_height: Height,
    height: Height,
    coinbase_maturity: Height,
) -> bool {
    spent && height - stake_height < coinbase_maturity
}

/// Whether a stake at `stake_height` is mature at `height`: its confirmations (verusd's
/// `tip − height + 1`) reached `maturity`.
pub fn is_mature(stake_height: Height, height: Height, maturity: Height) -> bool {
    height - stake_height + 1 >= maturity
}

/// The tracker's logic; the actor serialises access to it.
pub struct TrackerCore {
    chain: Arc<ChainConfig>,
    db: DatabaseConnection,
    /// For block transactions (`store::connect_blocks`).
    blocks_db: DatabaseConnection,
    /// For the checks beside the blocks ([`ChainContext::background_db`]).
    background_db: DatabaseConnection,
    fence: crate::store::lease::Fence,
    facts: ChainFacts,
    events: Recipient<EventsWritten>,
    payouts: Recipient<StakesMatured>,
    /// Set when a check found the running staking supply differing from a full recount: the
    /// next block recounts in full.
    recount: Arc<AtomicBool>,
    /// The tracker's cursor, as it committed it last.
    known: chain_store::KnownCursor,
    /// The identities eligible at the height of `known`, as the last committed step left them
    /// ([`stats::EligibleIds`]); forgotten with `known`; a recount reads it afresh.
    eligible: Option<stats::EligibleIds>,
}

impl TrackerCore {
    /// A tracker for the chain of `cx`; matured stakes are announced to `payouts`.
    pub fn new(cx: &ChainContext, payouts: Recipient<StakesMatured>) -> TrackerCore {
        TrackerCore {
            chain: Arc::clone(&cx.chain),
            db: cx.db.clone(),
            blocks_db: cx.blocks_db.clone(),
            background_db: cx.background_db.clone(),
            fence: cx.fence.clone(),
            facts: cx.facts.clone(),
            events: cx.events.clone(),
            payouts,
            recount: Arc::new(AtomicBool::new(false)),
            known: chain_store::KnownCursor::default(),
            eligible: None,
        }
    }

    fn name(&self) -> &str {
        &self.chain.name
    }

    /// The pool's eligible supply and count at `h`: stepped from `h − 1` when that row
    /// exists, recounted in full with `recount` (a check found the running total wrong; the
    /// recount wins). `eligible` is the set of identities eligible at `h − 1` the step
    /// before left; it becomes the set at `h` (`None` when there was no row at `h − 1`).
    async fn supply(
        &self,
        db: &impl ConnectionTrait,
        h: Height,
        recount: bool,
        eligible: &mut Option<stats::EligibleIds>,
    ) -> Result<(Sats, i32), ActorError> {
        let known = eligible.take();
        let previous = stats::at(db, self.name(), h - 1).await?;
        let Some(p) = previous else {
            return Ok(stats::supply_at(db, self.name(), h).await?);
        };
        // A recount trusts nothing the steps before computed.
        let known = known.filter(|_| !recount);
        let (stepped, ids) = stats::supply_step(
            db,
            self.name(),
            h,
            (p.staking_supply, p.active_subscribers),
            known,
        )
        .await?;
        // Stepped from a fresh read when recounting: good either way.
        *eligible = Some(ids);
        if !recount {
            return Ok(stepped);
        }
        let full = stats::supply_at(db, self.name(), h).await?;
        if full != stepped {
            log::error!(
                "chain {}: height {h}: the running staking supply {stepped:?} differs from a full recount {full:?}; using the recount",
                self.name()
            );
        }
        Ok(full)
    }

    /// Checks the running staking supply recorded at `h` against a full recount, beside the
    /// blocks (a recount reads every eligible output: 30 ms at 10,000 subscribers, too much
    /// for a block's path), through the API's connections: on SQLite the recount runs at their
    /// lower priority and pauses while the next block is processed, which it slowed by up to
    /// 15 ms (BENCHMARKS.md, twentieth round). A difference is logged as an error and the
    /// next block recounts in full. (A block at `h` disconnected meanwhile leaves no row or a
    /// row of the new branch; at worst the next block recounts for nothing.)
    fn check_supply(&self, h: Height) {
        let db = self.background_db.clone();
        let chain = self.name().to_owned();
        let recount = Arc::clone(&self.recount);
        actix::spawn(async move {
            crate::store::refresh_statistics(&db, crate::store::BLOCK_TABLES).await;
            let (Ok(full), Ok(Some(row))) = (
                stats::supply_at(&db, &chain, h).await,
                stats::at(&db, &chain, h).await,
            ) else {
                return;
            };
            let recorded = (row.staking_supply, row.active_subscribers);
            if recorded != full {
                log::error!(
                    "chain {chain}: height {h}: the running staking supply {recorded:?} differs from a full recount {full:?}; the next block recounts in full"
                );
                recount.store(true, Ordering::Release);
            }
        });
    }

    async fn start_height(&self, db: &impl ConnectionTrait) -> Result<Height, ActorError> {
        Ok(chain_store::get_chain(db, self.name())
            .await?
            .and_then(|c| c.start_height)
            .unwrap_or(0))
    }

    /// First height of the round a pool stake at `height` closes.
    async fn round_start(
        &self,
        db: &impl ConnectionTrait,
        height: Height,
    ) -> Result<Height, ActorError> {
        Ok(
            match stakes::last_round_end(db, self.name(), height).await? {
                Some(prev) => prev + 1,
                None => self.start_height(db).await?,
            },
        )
    }

    /// Work per subscriber over `first..=last`.
    async fn round_work(
        &self,
        db: &impl ConnectionTrait,
        first: Height,
        last: Height,
    ) -> Result<Vec<(String, Work)>, ActorError> {
        let intervals = subscribers::intervals_overlapping(db, self.name(), first, last).await?;
        let outputs = utxos::spans_for(db, self.name(), first, last).await?;
        let mut out: Vec<(String, Work)> = intervals
            .iter()
            .filter_map(|(id, iv)| {
                let w = work_over(outputs.get(id).map_or(&[], Vec::as_slice), iv, first, last);
                (w.0 > 0).then(|| (id.clone(), w))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Σ work of the round `first..=last` for a stake's record before it matures (the split
    /// computes it again per subscriber then). The work of a height is the pool's eligible
    /// supply at that height, which every block records in its statistics: summing them reads
    /// one number per height of the round instead of every output of every subscriber
    /// (0.7 s at 100,000 subscribers, BENCHMARKS.md, eighth round). Any height without
    /// statistics (before the pool's start, say) falls back to the full computation.
    async fn round_total(
        &self,
        db: &impl ConnectionTrait,
        first: Height,
        last: Height,
    ) -> Result<Work, ActorError> {
        let recorded = stats::supplies_between(db, self.name(), first, last).await?;
        if i64::try_from(recorded.len()).ok() == Some((last - first + 1).max(0)) {
            let total = recorded
                .iter()
                .fold(0u128, |t, (_, s)| t + s.0.max(0) as u128);
            return Ok(Work(total));
        }
        Ok(self
            .round_work(db, first, last)
            .await?
            .into_iter()
            .map(|(_, w)| w)
            .sum())
    }

    /// The fee in force at `height` for `identity`: its own if an admin set one, else the
    /// pool's.
    async fn fee_at(
        &self,
        db: &impl ConnectionTrait,
        identity: &str,
        height: Height,
    ) -> Result<FeeRate, ActorError> {
        match settings::subscriber_fee_at(db, self.name(), identity, height).await? {
            Some(own) => Ok(own),
            None => self.pool_fee_at(db, height).await,
        }
    }

    /// The pool's fee in force at `height`.
    async fn pool_fee_at(
        &self,
        db: &impl ConnectionTrait,
        height: Height,
    ) -> Result<FeeRate, ActorError> {
        Ok(settings::at(db, self.name(), height)
            .await?
            .map_or(self.chain.fee_percent, |v| v.settings.fee))
    }

    /// Recomputes the provisional round of every maturing pool stake above `height`.
    async fn recompute_rounds(
        &self,
        db: &impl ConnectionTrait,
        above: Height,
    ) -> Result<(), ActorError> {
        for mut s in stakes::with_status(db, self.name(), StakeStatus::Maturing).await? {
            if s.height <= above || s.solo || s.pool_own {
                continue;
            }
            s.round_start_height = self.round_start(db, s.height).await?;
            s.total_work = self.round_total(db, s.round_start_height, s.height).await?;
            stakes::update(db, &s).await?;
        }
        Ok(())
    }

    fn event(&self, kind: EventKind, s: &Stake, height: Height, message: String) -> NewEvent {
        NewEvent {
            height: Some(height),
            identity_address: Some(s.found_by.clone()),
            block_hash: Some(s.block_hash.clone()),
            data: Some(
                serde_json::json!({"status": s.status.as_str(), "reward": s.reward.to_string(), "stakeHeight": s.height}),
            ),
            ..NewEvent::new(self.name(), kind, message)
        }
    }

    /// Splits a maturing stake and writes its credits, the pool's keep and MATURED.
    async fn mature(
        &self,
        db: &impl ConnectionTrait,
        mut s: Stake,
        h: Height,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let mut credits = Vec::new();
        let keep;
        if s.pool_own {
            keep = s.reward;
        } else if s.solo {
            let fee = self.fee_at(db, &s.found_by, s.height).await?;
            let result = split(s.reward, &[(s.found_by.clone(), Work(1), fee)]);
            keep = result.pool_keep;
            for share in result.shares {
                credits.push(Credit {
                    id: 0,
                    stake_id: s.id,
                    identity_address: share.identity,
                    height: s.height,
                    work: Work::ZERO,
                    amount: share.credit,
                    fee: share.fee_amount,
                    fee_rate: share.fee,
                });
            }
        } else {
            s.round_start_height = self.round_start(db, s.height).await?;
            let work = self.round_work(db, s.round_start_height, s.height).await?;
            // The fees are read once per stake, not once per subscriber.
            let pool_fee = self.pool_fee_at(db, s.height).await?;
            let own = settings::subscriber_fees_at(db, self.name(), s.height).await?;
            let with_fees: Vec<_> = work
                .into_iter()
                .map(|(id, w)| {
                    let fee = own.get(&id).copied().unwrap_or(pool_fee);
                    (id, w, fee)
                })
                .collect();
            let result = split(s.reward, &with_fees);
            s.total_work = result.total_work;
            keep = result.pool_keep;
            if result.total_work.0 == 0 {
                s.note = Some("no work in the round: the pool keeps the reward".into());
                log::warn!(
                    "chain {}: stake {} at {}: no work in its round; the pool keeps {}",
                    self.name(),
                    s.block_hash,
                    s.height,
                    s.reward
                );
            }
            for share in result.shares {
                credits.push(Credit {
                    id: 0,
                    stake_id: s.id,
                    identity_address: share.identity,
                    height: s.height,
                    work: share.work,
                    amount: share.credit,
                    fee: share.fee_amount,
                    fee_rate: share.fee,
                });
            }
        }
        stakes::insert_credits(db, self.name(), &credits).await?;
        let keep_posting = Posting {
            chain: self.name(),
            identity_address: None,
            kind: LedgerKind::PoolKeep,
            amount: keep,
            stake_id: Some(s.id),
            payment_id: None,
            height: Some(h),
        };
        let mut postings: Vec<Posting<'_>> = credits
            .iter()
            .filter(|c| c.amount.0 > 0)
            .map(|c| Posting {
                identity_address: Some(&c.identity_address),
                kind: LedgerKind::Credit,
                amount: c.amount,
                ..keep_posting.clone()
            })
            .collect();
        if keep.0 > 0 {
            postings.push(keep_posting);
        }
        ledger::post_many(db, &postings).await?;
        s.status = StakeStatus::Matured;
        s.status_height = Some(h);
        s.pool_keep = Some(keep);
        stakes::update(db, &s).await?;
        let credited: Sats = credits.iter().map(|c| c.amount).sum();
        out.push(self.event(
            EventKind::StakeMatured,
            &s,
            h,
            format!(
                "stake {} at height {} matured: {} credited to {}, {} kept by the pool",
                s.block_hash,
                s.height,
                credited,
                crate::domain::count_of(credits.len(), "identity", "identities"),
                keep
            ),
        ));
        Ok(())
    }

    /// Applies connected blocks (consecutive, each following the one before; after the
    /// registry committed them) in one transaction, with the cursor at the last.
    /// `network_staking_supply` is the last block's.
    pub async fn connect(
        &mut self,
        blocks: &[Arc<Block<Tx>>],
        network_staking_supply: Option<Sats>,
    ) -> Result<(), ActorError> {
        let ids: Vec<(Height, &str)> = blocks.iter().map(|b| (b.height, b.hash.as_str())).collect();
        let first_prev = blocks.first().and_then(|b| b.previousblockhash.as_deref());
        let (applied, undo) = self
            .known
            .to_apply(&self.db, &self.chain.name, ACTOR, &ids, first_prev)
            .await?;
        for (height, hash, prev) in undo {
            self.disconnect(height, &hash, &prev).await?;
        }
        let Some((last, blocks)) = blocks.get(applied..).and_then(<[_]>::split_last) else {
            return Ok(());
        };
        let recount = self.recount.swap(false, Ordering::AcqRel);
        let mut out = Vec::new();
        // Taken: a transaction that fails leaves it forgotten, as `known`.
        let mut eligible = self.eligible.take();
        let committed = self
            .commit_blocks(
                blocks,
                last,
                network_staking_supply,
                recount,
                &mut eligible,
                &mut out,
            )
            .await;
        if committed.is_err() && recount {
            self.recount.store(true, Ordering::Release);
        }
        committed?;
        self.known.committed(last.height, &last.hash);
        self.eligible = eligible;
        for b in blocks.iter().chain([last]) {
            if b.height % stats::RECOUNT_EVERY == 0 {
                self.check_supply(b.height);
            }
        }
        if !out.is_empty() {
            self.events.do_send(EventsWritten);
        }
        let matured = out
            .iter()
            .filter(|e| e.kind == EventKind::StakeMatured)
            .count();
        if matured > 0 {
            self.payouts.do_send(StakesMatured {
                height: last.height,
                stakes: matured,
            });
        }
        for e in &out {
            log::info!(
                "chain {}: height {}: {}",
                self.name(),
                e.height.unwrap_or(last.height),
                e.message
            );
        }
        Ok(())
    }

    /// The transaction of [`TrackerCore::connect`]: `blocks`, then `last`, with the cursor;
    /// `recount` recounts the supply of the first in full. `eligible` is stepped through the
    /// blocks ([`TrackerCore::supply`]).
    async fn commit_blocks(
        &self,
        blocks: &[Arc<Block<Tx>>],
        last: &Block<Tx>,
        network_staking_supply: Option<Sats>,
        mut recount: bool,
        eligible: &mut Option<stats::EligibleIds>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let txn = self.fence.begin(&self.blocks_db).await?;
        for block in blocks {
            self.apply(&txn, block, None, recount, eligible, out)
                .await?;
            recount = false;
        }
        self.apply(&txn, last, network_staking_supply, recount, eligible, out)
            .await?;
        events::append(&txn, out).await?;
        chain_store::set_cursor(&txn, self.name(), ACTOR, last.height, &last.hash).await?;
        for b in blocks.iter().map(AsRef::as_ref).chain([last]) {
            crate::fault::point("stakes-before-commit", b.height);
        }
        txn.commit().await?;
        Ok(())
    }

    /// One block's work in `txn` (of [`TrackerCore::connect`]); its events go to `out`.
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        block: &Block<Tx>,
        network_staking_supply: Option<Sats>,
        recount: bool,
        eligible: &mut Option<stats::EligibleIds>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let h = block.height;
        let mut rounds_changed_after: Option<Height> = None;
        // A reward spent before coinbase maturity was taken by a StakeGuard proof (only such
        // a proof can spend it then). The watcher learns the maturity before any block.
        let coinbase_maturity = self
            .facts
            .coinbase_maturity()
            .unwrap_or(crate::domain::chain::COINBASE_MATURITY);
        let spent_coinbases: HashSet<&str> = block
            .tx
            .iter()
            .flat_map(|t| t.vin.iter())
            .filter(|v| v.vout == Some(0))
            .filter_map(|v| v.txid.as_deref())
            .collect();
        for mut s in stakes::with_status(txn, self.name(), StakeStatus::Maturing).await? {
            let hit = s
                .coinbase_txid
                .as_deref()
                .is_some_and(|t| spent_coinbases.contains(t));
            if taken_by_stakeguard(hit, s.height, h, coinbase_maturity) {
                s.status = StakeStatus::StakeGuard;
                s.status_height = Some(h);
                s.note = Some(format!("reward taken by a StakeGuard proof at height {h}"));
                stakes::update(txn, &s).await?;
                out.push(self.event(
                    EventKind::StakeStale,
                    &s,
                    h,
                    format!(
                        "stake {} at height {} lost its reward to a StakeGuard proof",
                        s.block_hash, s.height
                    ),
                ));
                rounds_changed_after =
                    Some(rounds_changed_after.map_or(s.height, |a: Height| a.min(s.height)));
            }
        }

        // The block's statistics first: they depend only on what the registry committed, and
        // the round of a stake found here (or recomputed below) sums the supply they record.
        let (supply, active) = self.supply(txn, h, recount, eligible).await?;
        stats::record(
            txn,
            self.name(),
            &stats::PoolStats {
                height: h,
                staking_supply: supply,
                active_subscribers: active,
                network_staking_supply,
                proof_of_stake: block.is_stake(),
            },
        )
        .await?;
        if block.is_stake() {
            self.found(txn, block, out).await?;
        }
        if let Some(above) = rounds_changed_after {
            self.recompute_rounds(txn, above).await?;
        }
        for s in stakes::with_status(txn, self.name(), StakeStatus::Maturing).await? {
            if is_mature(s.height, h, i64::from(self.chain.maturity)) {
                self.mature(txn, s, h, out).await?;
            }
        }
        Ok(())
    }

    async fn found(
        &self,
        txn: &impl ConnectionTrait,
        block: &Block<Tx>,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let h = block.height;
        let Some(coinbase) = block.tx.first() else {
            return Ok(());
        };
        let Some(reward_out) = coinbase.vout.first() else {
            return Ok(());
        };
        let pool = self.chain.pool_identity.as_str();
        let staker = block.postxddest.clone().unwrap_or_default();
        let known = crate::store::identities::at(txn, self.name(), &staker, h)
            .await?
            .is_some()
            || subscribers::get(txn, self.name(), &staker).await?.is_some();
        if !reward_out
            .script_pub_key
            .addresses
            .iter()
            .any(|a| a == pool)
        {
            // Not the pool's reward: a stake outside the pool, or verusd without -defaultid.
            if known {
                log::error!(
                    "chain {}: block {} at {h} was staked by {staker}, whom the pool follows, but its reward does not go to the pool identity {pool}: run verusd with -defaultid={pool}",
                    self.name(),
                    block.hash
                );
            }
            return Ok(());
        }
        let eligible = subscribers::intervals(txn, self.name(), &staker)
            .await?
            .iter()
            .any(|&(from, to)| from <= h && to.is_none_or(|t| h < t));
        let (pool_own, solo) = match kind_of_stake(staker == pool, eligible, known) {
            StakeKind::PoolOwn => (true, false),
            StakeKind::Solo => (false, true),
            StakeKind::Pool => (false, false),
        };
        let mut s = Stake {
            id: 0,
            chain: self.name().to_owned(),
            block_hash: block.hash.clone(),
            height: h,
            found_by: staker.clone(),
            reward: Sats(reward_out.value_sat),
            status: StakeStatus::Maturing,
            solo,
            pool_own,
            round_start_height: h,
            total_work: Work::ZERO,
            pool_keep: None,
            coinbase_txid: Some(coinbase.txid.clone()),
            status_height: Some(h),
            note: (pool_own && staker != pool).then(|| {
                format!("staked by {staker}, unknown to the pool; the reward is the pool's")
            }),
        };
        if !solo && !pool_own {
            s.round_start_height = self.round_start(txn, h).await?;
            s.total_work = self.round_total(txn, s.round_start_height, h).await?;
        }
        s.id = stakes::insert(txn, &s).await?;
        let kind = if pool_own {
            "the pool's own"
        } else if solo {
            "a solo stake"
        } else {
            "a pool stake"
        };
        out.push(self.event(
            EventKind::StakeFound,
            &s,
            h,
            format!(
                "stake found at height {h} by {staker} ({kind}): reward {}",
                s.reward
            ),
        ));
        Ok(())
    }

    /// Undoes the block at `height` if it is the last one applied.
    pub async fn disconnect(
        &mut self,
        height: Height,
        hash: &str,
        prev_hash: &str,
    ) -> Result<(), ActorError> {
        self.known.forget();
        self.eligible = None;
        match chain_store::cursor(&self.db, self.name(), ACTOR).await? {
            Some((h, _)) if h >= height => {}
            _ => return Ok(()),
        }
        let txn = self.fence.begin(&self.blocks_db).await?;
        let mut out = Vec::new();
        let mut rounds_changed = false;
        stats::delete_from(&txn, self.name(), height).await?;
        for mut s in stakes::touched_at(&txn, self.name(), height).await? {
            if s.height == height && s.block_hash == hash {
                if s.status != StakeStatus::Stale {
                    s.status = StakeStatus::Stale;
                    s.status_height = Some(height);
                    s.note = Some(format!("block {hash} left the main chain"));
                    stakes::update(&txn, &s).await?;
                    out.push(self.event(
                        EventKind::StakeStale,
                        &s,
                        height,
                        format!(
                            "stake {} at height {height} is stale: its block left the main chain",
                            s.block_hash
                        ),
                    ));
                    rounds_changed = true;
                }
            } else if s.status_height == Some(height) && s.height < height {
                // A matured stake stays matured: at maturity it was at least the coinbase
                // maturity deep, below any reorganisation verusd accepts, and so were the
                // stakes before it that decide its round; splitting it again at the next block
                // would give the same credits (and tell wallets twice). Only a StakeGuard spend
                // in the disconnected block is undone.
                if s.status != StakeStatus::StakeGuard {
                    continue;
                }
                rounds_changed = true;
                s.status = StakeStatus::Maturing;
                s.status_height = Some(s.height);
                s.note = None;
                stakes::update(&txn, &s).await?;
            }
        }
        if rounds_changed {
            self.recompute_rounds(&txn, 0).await?;
        }
        events::append(&txn, &out).await?;
        chain_store::set_cursor(&txn, self.name(), ACTOR, height - 1, prev_hash).await?;
        txn.commit().await?;
        if !out.is_empty() {
            self.events.do_send(EventsWritten);
        }
        Ok(())
    }
}

/// The actor around [`TrackerCore`].
pub struct StakeTracker {
    core: Arc<tokio::sync::Mutex<TrackerCore>>,
}

impl StakeTracker {
    /// The actor.
    pub fn new(core: TrackerCore) -> StakeTracker {
        StakeTracker {
            core: Arc::new(tokio::sync::Mutex::new(core)),
        }
    }
}

impl Actor for StakeTracker {
    type Context = actix::Context<Self>;
}

impl Handler<Shutdown> for StakeTracker {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<BlockConnected> for StakeTracker {
    type Result = ResponseFuture<Result<(), ActorError>>;
    fn handle(&mut self, msg: BlockConnected, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .connect(&msg.blocks, msg.network_staking_supply)
                .await
        })
    }
}

impl Handler<BlockDisconnected> for StakeTracker {
    type Result = ResponseFuture<Result<(), ActorError>>;
    fn handle(&mut self, msg: BlockDisconnected, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .disconnect(msg.height, &msg.hash, &msg.prev_hash)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stake_is_the_pools_a_solo_one_or_the_pools_own() {
        assert_eq!(kind_of_stake(false, true, true), StakeKind::Pool);
        assert_eq!(kind_of_stake(false, false, true), StakeKind::Solo);
        assert_eq!(kind_of_stake(false, false, false), StakeKind::PoolOwn);
        assert_eq!(kind_of_stake(true, false, true), StakeKind::PoolOwn);
        assert_eq!(
            kind_of_stake(true, true, true),
            StakeKind::PoolOwn,
            "the pool identity is never a subscriber"
        );
    }

    #[test]
    fn stakeguard_only_before_the_coinbase_maturity_and_maturity_by_confirmations() {
        assert!(taken_by_stakeguard(true, 100, 199, 100));
        assert!(
            !taken_by_stakeguard(true, 100, 200, 100),
            "mature: the owner may spend it"
        );
        assert!(
            taken_by_stakeguard(true, 100, 248, 149),
            "a PBaaS chain's maturity"
        );
        assert!(!taken_by_stakeguard(false, 100, 150, 100));
        assert!(!is_mature(100, 248, 150), "149 confirmations");
        assert!(is_mature(100, 249, 150), "150 confirmations");
    }
}
