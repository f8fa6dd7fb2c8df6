//! `Pool` and `PoolConditions`.

use async_graphql::{Context, Object, Result};
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::ChainConfig;
use crate::domain::{Conditions, PoolSettings, SubscriberStatus};
use crate::graphql::error::store_error;
use crate::graphql::scalars::Amount;
use crate::graphql::snapshot::PoolSnapshot;
use crate::health::SyncStatus;
use crate::state::{AppState, known_chain_id};
use crate::store;

/// A staking pool on one chain: what a newcomer needs to join, and how the pool is doing.
///
/// Its pool-wide figures (totals, statistics, processed height, settings, payout state,
/// subscriber count) come from the snapshot of the books' current version (see
/// [`crate::graphql::snapshot`]): each is read from the database at most once per change of
/// the books, however many requests and fields ask for it.
pub struct Pool {
    chain: ChainConfig,
    snapshot: OnceCell<Arc<PoolSnapshot>>,
}

impl Pool {
    /// The pool of a configured chain.
    pub fn new(chain: &ChainConfig) -> Pool {
        Pool {
            chain: chain.clone(),
            snapshot: OnceCell::new(),
        }
    }

    /// The snapshot this request reads (the version is read once per `Pool` object).
    async fn snapshot(&self, ctx: &Context<'_>) -> Result<&PoolSnapshot> {
        let state = ctx.data::<AppState>()?;
        let snapshot = self
            .snapshot
            .get_or_try_init(|| state.snapshots.get(&state.db, self.name()))
            .await
            .map_err(store_error)?;
        Ok(snapshot)
    }

    async fn totals(&self, ctx: &Context<'_>) -> Result<&store::ledger::PoolTotals> {
        let state = ctx.data::<AppState>()?;
        self.snapshot(ctx)
            .await?
            .totals
            .get_or_try_init(|| store::ledger::pool_totals(&state.db, self.name()))
            .await
            .map_err(store_error)
    }

    async fn latest(&self, ctx: &Context<'_>) -> Result<Option<&store::stats::PoolStats>> {
        let state = ctx.data::<AppState>()?;
        Ok(self
            .snapshot(ctx)
            .await?
            .latest
            .get_or_try_init(|| store::stats::latest(&state.db, self.name()))
            .await
            .map_err(store_error)?
            .as_ref())
    }

    async fn payout(&self, ctx: &Context<'_>) -> Result<&store::settings::PayoutState> {
        let state = ctx.data::<AppState>()?;
        self.snapshot(ctx)
            .await?
            .payout_state
            .get_or_try_init(|| store::settings::payout_state(&state.db, self.name()))
            .await
            .map_err(store_error)
    }

    fn name(&self) -> &str {
        &self.chain.name
    }

    /// The settings in force from the next block (the stored version, else the config's).
    async fn settings(&self, ctx: &Context<'_>) -> Result<PoolSettings> {
        let state = ctx.data::<AppState>()?;
        let stored = self
            .snapshot(ctx)
            .await?
            .settings
            .get_or_try_init(|| async {
                store::settings::latest(&state.db, self.name())
                    .await
                    .map(|v| v.map(|v| v.settings))
            })
            .await
            .map_err(store_error)?;
        Ok(stored.clone().unwrap_or_else(|| self.chain.settings()))
    }

    async fn processed(&self, ctx: &Context<'_>) -> Result<i64> {
        self.snapshot(ctx)
            .await?
            .processed
            .get_or_try_init(|| self.read_processed(ctx))
            .await
            .copied()
    }

    async fn read_processed(&self, ctx: &Context<'_>) -> Result<i64> {
        let state = ctx.data::<AppState>()?;
        if let Some(tip) = store::chain::tip(&state.db, self.name())
            .await
            .map_err(store_error)?
        {
            return Ok(tip.height);
        }
        let start = store::chain::get_chain(&state.db, self.name())
            .await
            .map_err(store_error)?
            .and_then(|c| c.start_height);
        Ok(start.map_or(0, |s| s - 1).max(0))
    }
}

fn height_i32(h: i64) -> i32 {
    i32::try_from(h).unwrap_or(i32::MAX)
}

/// A staking pool on one chain: what a newcomer needs to join, and how the pool is doing.
#[Object]
impl Pool {
    /// The chain's currency name as configured (`VRSC`, `vrsctest`, …).
    async fn chain(&self) -> &str {
        self.name()
    }

    /// The chain's currency i-address; empty until the daemon has told it, for chains other
    /// than VRSC and VRSCTEST.
    async fn chain_id(&self, ctx: &Context<'_>) -> Result<String> {
        let state = ctx.data::<AppState>()?;
        let stored = store::chain::get_chain(&state.db, self.name())
            .await
            .map_err(store_error)?
            .and_then(|c| c.chain_id);
        Ok(stored
            .or_else(|| known_chain_id(self.name()).map(str::to_owned))
            .unwrap_or_default())
    }

    /// The R-address a subscriber adds to its VerusID's primary addresses to join.
    async fn primary_address(&self) -> &str {
        self.chain.pool_primary_address.as_str()
    }

    /// The VerusID that receives the stake rewards and pays subscribers.
    async fn pool_identity(&self) -> &str {
        self.chain.pool_identity.as_str()
    }

    /// The pool's fee in percent, at most 4 decimals (`"3.33"`).
    async fn fee_percent(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.settings(ctx).await?.fee.to_string())
    }

    /// The default minimum payout; a subscriber may set its own.
    async fn min_payout(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.settings(ctx).await?.min_payout))
    }

    /// Confirmations a stake needs before its reward is split.
    async fn maturity(&self) -> i32 {
        i32::try_from(self.chain.maturity).unwrap_or(i32::MAX)
    }

    /// The conditions an identity must meet to be a subscriber.
    async fn conditions(&self, ctx: &Context<'_>) -> Result<PoolConditions> {
        Ok(PoolConditions(self.settings(ctx).await?.conditions))
    }

    /// The daemon's chain tip height (the processed height while the daemon has not answered).
    async fn tip_height(&self, ctx: &Context<'_>) -> Result<i32> {
        let state = ctx.data::<AppState>()?;
        // The probe's tip can be a poll older than the block just processed: never below it.
        let processed = self.processed(ctx).await?;
        let probed = state
            .health
            .daemon(self.name())
            .tip_height
            .map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX));
        Ok(height_i32(processed.max(probed)))
    }

    /// The highest block the pool has processed.
    async fn processed_height(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(height_i32(self.processed(ctx).await?))
    }

    /// Subscribers that are ACTIVE or COOLING_DOWN.
    async fn subscriber_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let state = ctx.data::<AppState>()?;
        let n = self
            .snapshot(ctx)
            .await?
            .subscriber_count
            .get_or_try_init(|| {
                store::subscribers::count_by_status(
                    &state.db,
                    self.name(),
                    &[SubscriberStatus::Active, SubscriberStatus::CoolingDown],
                )
            })
            .await
            .map_err(store_error)?;
        Ok(i32::try_from(*n).unwrap_or(i32::MAX))
    }

    /// The pool's eligible staking supply at the processed height.
    async fn staking_supply(&self, ctx: &Context<'_>) -> Result<Amount> {
        let latest = self.latest(ctx).await?;
        Ok(Amount(latest.map(|s| s.staking_supply).unwrap_or_default()))
    }

    /// The network's staking supply as the daemon last reported it.
    async fn network_staking_supply(&self, ctx: &Context<'_>) -> Result<Option<Amount>> {
        let latest = self.latest(ctx).await?;
        Ok(latest.and_then(|s| s.network_staking_supply).map(Amount))
    }

    /// Everything the pool kept from matured stakes (fees and rounding).
    async fn fees_earned(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.totals(ctx).await?.fees_earned))
    }

    /// Everything paid to subscribers and confirmed.
    async fn total_paid(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.totals(ctx).await?.total_paid))
    }

    /// Everything credited to subscribers and not yet in a payment.
    async fn pending_total(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.totals(ctx).await?.pending_total))
    }

    /// Whether payouts are paused (by an admin, or because the ledger check failed).
    async fn payouts_paused(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.payout(ctx).await?.held())
    }

    /// Why payouts are paused: "paused by an admin: <reason>" (stays until an admin resumes),
    /// or "held by the ledger check until it passes again: <the failed check>" (lifts itself
    /// when the check passes), or both.
    async fn paused_reason(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.payout(ctx).await?.held_reason())
    }

    /// Whether payouts are paused by an admin (apart from the ledger check).
    async fn paused_by_admin(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.payout(ctx).await?.paused)
    }

    /// The ledger check that failed and holds payouts until it passes again, if any.
    async fn ledger_check_failure(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.payout(ctx).await?.check_failure.clone())
    }

    /// How the pool follows the daemon's chain: `FOLLOWING`, `BEHIND` (the daemon's tip is
    /// below the processed height on the same blocks: it reindexes or is a fail-over node
    /// still syncing; the pool waits and changes nothing) or `STOPPED` (the daemon's chain
    /// left the pool's deeper than the reorganisation limit; nothing was undone).
    async fn sync_state(&self, ctx: &Context<'_>) -> Result<SyncState> {
        let state = ctx.data::<AppState>()?;
        Ok(match state.health.sync(self.name()) {
            SyncStatus::Following => SyncState::Following,
            SyncStatus::Behind { .. } => SyncState::Behind,
            SyncStatus::Stopped { .. } => SyncState::Stopped,
        })
    }

    /// Why the pool does not simply follow the daemon (see `syncState`), in words.
    async fn sync_reason(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let state = ctx.data::<AppState>()?;
        Ok(state.health.sync(self.name()).reason())
    }
}

/// How the pool follows the daemon's chain.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Following (or catching up with) the daemon's chain.
    Following,
    /// The daemon is behind the pool on the same chain; the pool waits.
    Behind,
    /// The daemon's chain left the pool's deeper than the limit; the pool stopped.
    Stopped,
}

/// The conditions an identity must meet to be a subscriber; 0 means no lock / no limit.
pub struct PoolConditions(pub Conditions);

/// The conditions an identity must meet to be a subscriber; 0 means no lock / no limit.
#[Object]
impl PoolConditions {
    /// Minimum delay lock in blocks (the identity must be locked with at least this unlock
    /// delay); 0 = no lock required.
    async fn min_unlock_delay(&self) -> i32 {
        i32::try_from(self.0.min_unlock_delay).unwrap_or(i32::MAX)
    }

    /// Whether the revocation and recovery authorities must both differ from the identity
    /// itself and from every identity the pool can sign for.
    async fn require_separate_revoke_recover(&self) -> bool {
        self.0.require_separate_revoke_recover
    }

    /// The most primary addresses an identity may have (the pool's included).
    async fn max_primary_addresses(&self) -> i32 {
        i32::try_from(self.0.max_primary_addresses).unwrap_or(i32::MAX)
    }

    /// The most UTXOs of at least `utxoCountMin` an identity may hold; 0 = no limit.
    async fn max_utxos(&self) -> i32 {
        i32::try_from(self.0.max_utxos).unwrap_or(i32::MAX)
    }

    /// UTXOs smaller than this are not counted against `maxUtxos`.
    async fn utxo_count_min(&self) -> Amount {
        Amount(self.0.utxo_count_min)
    }
}
