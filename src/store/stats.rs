//! Pool statistics, one row per processed block, for charts and the luck metric.

use entity::pool_stats;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::StoreResult;
use crate::domain::{Height, Sats};

/// The pool as of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The block height.
    pub height: Height,
    /// The pool's eligible staking supply at that height.
    pub staking_supply: Sats,
    /// ACTIVE subscribers at that height.
    pub active_subscribers: i32,
    /// The network's staking supply, when the daemon reported it live.
    pub network_staking_supply: Option<Sats>,
}

impl From<pool_stats::Model> for PoolStats {
    fn from(m: pool_stats::Model) -> Self {
        PoolStats {
            height: m.height,
            staking_supply: Sats(m.staking_supply),
            active_subscribers: m.active_subscribers,
            network_staking_supply: m.network_staking_supply.map(Sats),
        }
    }
}

/// Records the statistics of a block (again, if the block is processed again).
pub async fn record(db: &impl ConnectionTrait, chain: &str, s: &PoolStats) -> StoreResult<()> {
    let row = pool_stats::ActiveModel {
        chain: Set(chain.to_owned()),
        height: Set(s.height),
        staking_supply: Set(s.staking_supply.0),
        active_subscribers: Set(s.active_subscribers),
        network_staking_supply: Set(s.network_staking_supply.map(|v| v.0)),
    };
    use pool_stats::Column as C;
    pool_stats::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::Chain, C::Height])
                .update_columns([
                    C::StakingSupply,
                    C::ActiveSubscribers,
                    C::NetworkStakingSupply,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The newest statistics row.
pub async fn latest(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Option<PoolStats>> {
    Ok(pool_stats::Entity::find()
        .filter(pool_stats::Column::Chain.eq(chain))
        .order_by_desc(pool_stats::Column::Height)
        .one(db)
        .await?
        .map(Into::into))
}

/// Rows with `from ≤ height ≤ to`, oldest first, at most `limit`.
pub async fn range(
    db: &impl ConnectionTrait,
    chain: &str,
    from: Height,
    to: Height,
    limit: u64,
) -> StoreResult<Vec<PoolStats>> {
    Ok(pool_stats::Entity::find()
        .filter(pool_stats::Column::Chain.eq(chain))
        .filter(pool_stats::Column::Height.between(from, to))
        .order_by_asc(pool_stats::Column::Height)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Forgets the statistics of a disconnected block.
pub async fn delete_from(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<()> {
    pool_stats::Entity::delete_many()
        .filter(pool_stats::Column::Chain.eq(chain))
        .filter(pool_stats::Column::Height.gte(height))
        .exec(db)
        .await?;
    Ok(())
}

/// The pool's eligible staking supply at `height` and how many subscribers are eligible then
/// (DESIGN §3): outputs mined at or below `height − 150`, not spent before `height`, of
/// identities inside an eligibility interval at `height`.
pub async fn supply_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<(Sats, i32)> {
    use entity::{eligibility_interval as ei, subscriber_utxo as su};
    use sea_orm::Condition;
    let eligible: Vec<String> = ei::Entity::find()
        .filter(ei::Column::Chain.eq(chain))
        .filter(ei::Column::FromHeight.lte(height))
        .filter(
            Condition::any()
                .add(ei::Column::ToHeight.is_null())
                .add(ei::Column::ToHeight.gt(height)),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.identity_address)
        .collect();
    let mut total = 0i64;
    for chunk in eligible.chunks(500) {
        let amounts: Vec<i64> = su::Entity::find()
            .select_only()
            .column(su::Column::Amount)
            .filter(su::Column::Chain.eq(chain))
            .filter(su::Column::IdentityAddress.is_in(chunk.iter().map(String::as_str)))
            .filter(su::Column::Height.lte(height - crate::domain::conditions::COOLDOWN_BLOCKS))
            .filter(
                Condition::any()
                    .add(su::Column::SpentHeight.is_null())
                    .add(su::Column::SpentHeight.gte(height)),
            )
            .into_tuple()
            .all(db)
            .await?;
        total += amounts.into_iter().sum::<i64>();
    }
    Ok((
        Sats(total),
        i32::try_from(eligible.len()).unwrap_or(i32::MAX),
    ))
}

/// The rows at exactly these heights (those that exist), oldest first.
pub async fn at_heights(
    db: &impl ConnectionTrait,
    chain: &str,
    heights: &[Height],
) -> StoreResult<Vec<PoolStats>> {
    let mut out = Vec::new();
    for chunk in heights.chunks(500) {
        let rows = pool_stats::Entity::find()
            .filter(pool_stats::Column::Chain.eq(chain))
            .filter(pool_stats::Column::Height.is_in(chunk.iter().copied()))
            .order_by_asc(pool_stats::Column::Height)
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(PoolStats::from));
    }
    Ok(out)
}
