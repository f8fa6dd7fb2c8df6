//! `Stake`, `StakeStatus`, `Credit` and `PoolStats`.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};

use crate::domain::StakeStatus as Status;
use crate::graphql::loaders::{self, Loaders};
use crate::graphql::scalars::{Amount, BigInt};
use crate::store;

/// The fate of a stake.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "StakeStatus")]
pub enum StakeStatus {
    /// Waiting for `maturity` confirmations.
    Maturing,
    /// Mature and split: its credits are on the ledger.
    Matured,
    /// Orphaned: its block left the main chain. Its heights fall into the next stake's round.
    Stale,
    /// Its reward was taken by a StakeGuard double-stake proof. No payout.
    Stakeguard,
}

impl From<Status> for StakeStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Maturing => StakeStatus::Maturing,
            Status::Matured => StakeStatus::Matured,
            Status::Stale => StakeStatus::Stale,
            Status::StakeGuard => StakeStatus::Stakeguard,
        }
    }
}

impl From<StakeStatus> for Status {
    fn from(s: StakeStatus) -> Self {
        match s {
            StakeStatus::Maturing => Status::Maturing,
            StakeStatus::Matured => Status::Matured,
            StakeStatus::Stale => Status::Stale,
            StakeStatus::Stakeguard => Status::StakeGuard,
        }
    }
}

/// A block staked by the pool's wallet.
#[derive(Clone)]
pub struct Stake(pub store::stakes::Stake);

/// A block staked by the pool's wallet: a subscriber's (a pool stake), a known identity's that
/// was not eligible (solo), or the pool identity's own.
#[Object]
impl Stake {
    /// The block's hash.
    async fn block_hash(&self) -> &str {
        &self.0.block_hash
    }

    /// The block's height.
    async fn height(&self) -> i32 {
        i32::try_from(self.0.height).unwrap_or(i32::MAX)
    }

    /// The staker's identity address (`postxddest`).
    async fn found_by(&self) -> &str {
        &self.0.found_by
    }

    /// The reward (the coinbase's first output).
    async fn reward(&self) -> Amount {
        Amount(self.0.reward)
    }

    /// Its fate.
    async fn status(&self) -> StakeStatus {
        self.0.status.into()
    }

    /// Confirmations (`tip − height + 1` on the main chain; −1 when stale).
    async fn confirmations(&self, ctx: &Context<'_>) -> Result<i32> {
        if self.0.status == Status::Stale {
            return Ok(-1);
        }
        let tip = match loaders::one(&Loaders::of(ctx)?.tips, self.0.chain.clone()).await? {
            0 => self.0.height,
            tip => tip,
        };
        Ok(i32::try_from(tip - self.0.height + 1).unwrap_or(i32::MAX))
    }

    /// Staked by a known identity that was not ACTIVE: credited to it alone.
    async fn solo(&self) -> bool {
        self.0.solo
    }

    /// Staked by the pool identity (or an address the pool does not know): the pool's own.
    async fn pool_own(&self) -> bool {
        self.0.pool_own
    }

    /// First height of the round this stake closes (provisional until MATURED).
    async fn round_start_height(&self) -> i32 {
        i32::try_from(self.0.round_start_height).unwrap_or(i32::MAX)
    }

    /// Σ work of the round (provisional until MATURED).
    async fn total_work(&self) -> BigInt {
        BigInt(self.0.total_work)
    }

    /// What the pool kept (fees and rounding), set at maturity.
    async fn pool_keep(&self) -> Option<Amount> {
        self.0.pool_keep.map(Amount)
    }

    /// Why, when something is worth saying (no work in the round, StakeGuard, orphaned).
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// The credits of the split, once MATURED, largest work first: at most `first`; for the
    /// next ones pass the last one's `identityAddress` as `after`.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn credits(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, at most 500.", default = 100)] first: i32,
        #[graphql(desc = "The `identityAddress` of the last credit already read.")] after: Option<
            String,
        >,
    ) -> Result<Vec<Credit>> {
        let limit = crate::graphql::args::page_size(first)?;
        let page = store::stakes::StakePage {
            stake_id: self.0.id,
            after_identity: after,
            limit,
        };
        let rows = loaders::one(&Loaders::of(ctx)?.stake_credits, page).await?;
        Ok(rows
            .into_iter()
            .map(|c| Credit::new(c, &self.0.block_hash))
            .collect())
    }
}

/// What one identity earned from one matured stake, with the work behind it, so a subscriber
/// can check its own payout.
#[derive(SimpleObject, Debug, Clone)]
pub struct Credit {
    /// The identity.
    pub identity_address: String,
    /// The stake's block.
    pub block_hash: String,
    /// The stake's height.
    pub height: i32,
    /// The identity's work in the round (0 for a solo stake).
    pub work: BigInt,
    /// Credited.
    pub amount: Amount,
    /// The fee taken from its share.
    pub fee: Amount,
    /// The fee rate applied, in percent.
    pub fee_percent: String,
    #[graphql(skip)]
    pub id: i64,
}

impl Credit {
    /// From a stored credit.
    pub fn new(c: store::stakes::Credit, block_hash: &str) -> Credit {
        Credit {
            identity_address: c.identity_address,
            block_hash: block_hash.to_owned(),
            height: i32::try_from(c.height).unwrap_or(i32::MAX),
            work: BigInt(c.work),
            amount: Amount(c.amount),
            fee: Amount(c.fee),
            fee_percent: c.fee_rate.to_string(),
            id: c.id,
        }
    }
}

/// The pool as of one processed block.
#[derive(SimpleObject, Debug, Clone)]
pub struct PoolStats {
    /// The block height.
    pub height: i32,
    /// The pool's eligible staking supply at that height.
    pub staking_supply: Amount,
    /// Subscribers eligible at that height.
    pub active_subscribers: i32,
    /// The network's staking supply, when the daemon reported it live (at its tip).
    pub network_staking_supply: Option<Amount>,
    /// Whether the block was staked (by anyone) rather than mined (`false` for blocks processed
    /// before coinstaker recorded it).
    pub proof_of_stake: bool,
    /// The pool's expected stakes in this block: its staking supply divided by the network's
    /// for a staked block, 0 for a mined one, `null` when the network's supply is unknown
    /// (blocks processed behind the tip, or before coinstaker recorded it).
    /// Summed over a range and compared with `poolStakes`, it gives the pool's luck. A ratio,
    /// not an amount.
    pub expected_stakes: Option<f64>,
    /// Stakes the pool found at this height that are not stale (0 or 1).
    pub pool_stakes: i32,
}

impl PoolStats {
    /// The row of `s`, with `pool_stakes` stakes found at its height.
    pub fn new(s: store::stats::PoolStats, pool_stakes: i32) -> Self {
        // Unknown without the network's supply (behind the tip, or processed before this
        // was recorded); a share for a chart, not an amount.
        let expected_stakes = s.network_staking_supply.filter(|n| n.0 > 0).map(|n| {
            if s.proof_of_stake {
                (s.staking_supply.0 as f64 / n.0 as f64).min(1.0)
            } else {
                0.0
            }
        });
        PoolStats {
            height: i32::try_from(s.height).unwrap_or(i32::MAX),
            staking_supply: Amount(s.staking_supply),
            active_subscribers: s.active_subscribers,
            network_staking_supply: s.network_staking_supply.map(Amount),
            proof_of_stake: s.proof_of_stake,
            expected_stakes,
            pool_stakes,
        }
    }
}
