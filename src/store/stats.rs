//! Pool statistics, one row per processed block, for charts and the luck metric.

use entity::pool_stats;
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
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
    /// Whether the block was staked (by anyone) rather than mined.
    pub proof_of_stake: bool,
}

impl From<pool_stats::Model> for PoolStats {
    fn from(m: pool_stats::Model) -> Self {
        PoolStats {
            height: m.height,
            staking_supply: Sats(m.staking_supply),
            active_subscribers: m.active_subscribers,
            network_staking_supply: m.network_staking_supply.map(Sats),
            proof_of_stake: m.proof_of_stake,
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
        proof_of_stake: Set(s.proof_of_stake),
    };
    use pool_stats::Column as C;
    pool_stats::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::Chain, C::Height])
                .update_columns([
                    C::StakingSupply,
                    C::ActiveSubscribers,
                    C::NetworkStakingSupply,
                    C::ProofOfStake,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The pool's luck over `from ..= to`, counting only blocks whose network staking supply is
/// known: the stakes it was expected to find (Σ pool supply / network supply over the staked
/// blocks) and the stakes it found there that are not stale.
pub async fn luck(
    db: &impl ConnectionTrait,
    chain: &str,
    from: Height,
    to: Height,
) -> StoreResult<(f64, i64)> {
    use pool_stats::Column as C;
    let rows = pool_stats::Entity::find()
        .filter(C::Chain.eq(chain))
        .filter(C::Height.between(from, to))
        .filter(C::NetworkStakingSupply.is_not_null())
        .all(db)
        .await?;
    let mut expected = 0.0;
    let mut known = std::collections::HashSet::new();
    for r in &rows {
        known.insert(r.height);
        if let (true, Some(network)) = (r.proof_of_stake, r.network_staking_supply)
            && network > 0
        {
            // A ratio for a gauge, not an amount.
            expected += (r.staking_supply as f64 / network as f64).min(1.0);
        }
    }
    let found = super::stakes::heights_between(db, chain, from, to)
        .await?
        .into_iter()
        .filter(|h| known.contains(h))
        .count();
    Ok((expected, i64::try_from(found).unwrap_or(i64::MAX)))
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

/// Eligibility intervals that contain `height` (`from ≤ height < to`, `to` open when null).
fn eligible_at(height: Height) -> sea_orm::Condition {
    use entity::eligibility_interval as ei;
    sea_orm::Condition::all()
        .add(ei::Column::FromHeight.lte(height))
        .add(
            sea_orm::Condition::any()
                .add(ei::Column::ToHeight.is_null())
                .add(ei::Column::ToHeight.gt(height)),
        )
}

/// The pool's eligible staking supply at `height` and how many subscribers are eligible then
/// (architecture §2): outputs mined at or below `height − 150`, not spent before `height`, of
/// identities inside an eligibility interval at `height`.
pub async fn supply_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<(Sats, i32)> {
    use entity::{eligibility_interval as ei, subscriber_utxo as su};
    use sea_orm::Condition;
    // One statement with the eligible identities as a subquery (a semi-join): the same sum
    // in slices of 500 bound identities made PostgreSQL test every output against the list,
    // 0.85 s a slice at 83,000 outputs, 17 s a recount (BENCHMARKS.md, fourth round).
    let eligible_ids = Query::select()
        .column(ei::Column::IdentityAddress)
        .from(ei::Entity)
        .and_where(ei::Column::Chain.eq(chain))
        .cond_where(eligible_at(height))
        .to_owned();
    let total: Option<i64> = su::Entity::find()
        .select_only()
        .column_as(super::sum_i64(db.get_database_backend(), "amount"), "total")
        .filter(su::Column::Chain.eq(chain))
        .filter(su::Column::IdentityAddress.in_subquery(eligible_ids))
        .filter(su::Column::Height.lte(height - crate::domain::conditions::COOLDOWN_BLOCKS))
        .filter(
            Condition::any()
                .add(su::Column::SpentHeight.is_null())
                .add(su::Column::SpentHeight.gte(height)),
        )
        .into_tuple()
        .one(db)
        .await?;
    let eligible = ei::Entity::find()
        .filter(ei::Column::Chain.eq(chain))
        .filter(eligible_at(height))
        .count(db)
        .await?;
    Ok((
        Sats(total.unwrap_or(0)),
        i32::try_from(eligible).unwrap_or(i32::MAX),
    ))
}

/// How often (in blocks) [`supply_step`]'s running total is checked against a full
/// [`supply_at`] recount (beside the blocks, not on their path).
pub const RECOUNT_EVERY: Height = 100;

/// The identities eligible at one height (an eligibility interval contains it), as the stake
/// tracker carries them from one block's [`supply_step`] to the next: a block's maturing and
/// spent outputs are then sorted by holder in memory, with no read about the holders. Asking
/// the database instead cost 1.8 ms a block on SQLite at 10,000 subscribers, and PostgreSQL
/// hashed every interval of the chain for it (3 ms at 10,000, growing with the pool;
/// BENCHMARKS.md, twentieth round). A set is only as good as the step that made it: the
/// tracker forgets it whenever a block's transaction fails or a block is disconnected, reads
/// it afresh to recount the running supply, and [`supply_step`] reads it again when the
/// eligible count recorded at the height before does not match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleIds {
    height: Height,
    ids: std::collections::HashSet<String>,
}

impl EligibleIds {
    /// The identities eligible at `height`, read from the database.
    pub async fn read(db: &impl ConnectionTrait, chain: &str, height: Height) -> StoreResult<Self> {
        use entity::eligibility_interval as ei;
        let ids: Vec<String> = ei::Entity::find()
            .select_only()
            .column(ei::Column::IdentityAddress)
            .filter(ei::Column::Chain.eq(chain))
            .filter(eligible_at(height))
            .into_tuple()
            .all(db)
            .await?;
        Ok(EligibleIds {
            height,
            ids: ids.into_iter().collect(),
        })
    }

    /// The height the set is of.
    pub fn height(&self) -> Height {
        self.height
    }

    /// How many identities are eligible then.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `identity` is eligible then.
    pub fn contains(&self, identity: &str) -> bool {
        self.ids.contains(identity)
    }
}

/// The pool's eligible supply and eligible count at `height` from those at `height − 1`,
/// reading only what can differ between the two heights, so that the cost follows the
/// block's changes and not the number of subscribers:
///
/// - identities with an eligibility interval starting or ending at `height` (the only ones
///   whose eligibility can change): their whole contribution at both heights;
/// - for every other identity eligible at `height` (and so at `height − 1`): outputs mined at
///   `height − 150` (they become mature) and outputs spent at `height − 1` (they stop
///   counting). Same definition as [`supply_at`], which the tests compare it with.
///
/// `known` is the set of identities eligible at `height − 1` from the step before; it is
/// read from the database when missing, of another height, or of another size than the
/// count in `previous`. Returns the supply and count at `height`, and the set at `height`.
pub async fn supply_step(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
    previous: (Sats, i32),
    known: Option<EligibleIds>,
) -> StoreResult<((Sats, i32), EligibleIds)> {
    use std::collections::{HashMap, HashSet};

    use entity::{eligibility_interval as ei, subscriber_utxo as su};

    use crate::domain::conditions::COOLDOWN_BLOCKS;
    let eligible = |intervals: &[(i64, Option<i64>)], at: Height| {
        intervals
            .iter()
            .any(|(from, to)| *from <= at && to.is_none_or(|t| t > at))
    };
    // Whether an output mined at `mined` and spent at `spent` counts at `at`.
    let counting = |mined: Height, spent: Option<Height>, at: Height| {
        mined <= at - COOLDOWN_BLOCKS && spent.is_none_or(|s| s >= at)
    };
    let (mut supply, mut count) = (previous.0.0, previous.1);
    let mut ids = match known {
        Some(k) if k.height == height - 1 && usize::try_from(previous.1).ok() == Some(k.len()) => k,
        _ => EligibleIds::read(db, chain, height - 1).await?,
    };
    ids.height = height;

    // One query per index (`ix_eligibility_from_identity`, `ix_eligibility_to_identity`, which
    // cover the answer): SQLite scans the whole table for `from_height = ? OR to_height = ?`.
    let mut boundary: HashSet<String> = HashSet::new();
    for column in [ei::Column::FromHeight, ei::Column::ToHeight] {
        let found: Vec<String> = ei::Entity::find()
            .select_only()
            .column(ei::Column::IdentityAddress)
            .filter(ei::Column::Chain.eq(chain))
            .filter(column.eq(height))
            .into_tuple()
            .all(db)
            .await?;
        boundary.extend(found);
    }
    if !boundary.is_empty() {
        let addresses: Vec<&str> = boundary.iter().map(String::as_str).collect();
        let mut intervals: HashMap<String, Vec<(i64, Option<i64>)>> = HashMap::new();
        let mut outputs = Vec::new();
        // In slices: thousands of identities can become eligible at one height.
        for chunk in addresses.chunks(500) {
            for i in ei::Entity::find()
                .filter(ei::Column::Chain.eq(chain))
                .filter(ei::Column::IdentityAddress.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                intervals
                    .entry(i.identity_address)
                    .or_default()
                    .push((i.from_height, i.to_height));
            }
            outputs.extend(
                su::Entity::find()
                    .filter(su::Column::Chain.eq(chain))
                    .filter(super::utxos::of_identities(chunk.iter().copied()))
                    .all(db)
                    .await?,
            );
        }
        let mut by_identity: HashMap<&str, Vec<&su::Model>> = HashMap::new();
        for o in &outputs {
            by_identity
                .entry(o.identity_address.as_str())
                .or_default()
                .push(o);
        }
        for id in &boundary {
            let ints = intervals.get(id).map(Vec::as_slice).unwrap_or_default();
            let (before, after) = (eligible(ints, height - 1), eligible(ints, height));
            let mine = by_identity
                .get(id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            if before {
                supply -= mine
                    .iter()
                    .filter(|o| counting(o.height, o.spent_height, height - 1))
                    .map(|o| o.amount)
                    .sum::<i64>();
                count -= 1;
            }
            if after {
                supply += mine
                    .iter()
                    .filter(|o| counting(o.height, o.spent_height, height))
                    .map(|o| o.amount)
                    .sum::<i64>();
                count += 1;
                ids.ids.insert(id.clone());
            } else {
                ids.ids.remove(id);
            }
        }
    }

    // The outputs that just matured or were spent at the block before, of holders eligible at
    // `height` (those at a boundary were counted above).
    let changed =
        super::utxos::mined_or_spent(db, chain, height - COOLDOWN_BLOCKS, height - 1).await?;
    for o in changed
        .iter()
        .filter(|o| ids.contains(&o.identity_address) && !boundary.contains(&o.identity_address))
    {
        // Counted at `height` but not at `height − 1` (it just matured), or the reverse
        // (it was spent at `height − 1`).
        supply += match (
            counting(o.height, o.spent_height, height),
            counting(o.height, o.spent_height, height - 1),
        ) {
            (true, false) => o.amount.0,
            (false, true) => -o.amount.0,
            _ => 0,
        };
    }
    Ok(((Sats(supply), count), ids))
}

/// The row at `height`, if that height was processed.
pub async fn at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Option<PoolStats>> {
    Ok(pool_stats::Entity::find()
        .filter(pool_stats::Column::Chain.eq(chain))
        .filter(pool_stats::Column::Height.eq(height))
        .one(db)
        .await?
        .map(PoolStats::from))
}

/// The pool's eligible staking supply recorded at each height of `first..=last` that has
/// statistics, as (height, supply).
pub async fn supplies_between(
    db: &impl ConnectionTrait,
    chain: &str,
    first: Height,
    last: Height,
) -> StoreResult<Vec<(Height, Sats)>> {
    let rows: Vec<(Height, i64)> = pool_stats::Entity::find()
        .select_only()
        .column(pool_stats::Column::Height)
        .column(pool_stats::Column::StakingSupply)
        .filter(pool_stats::Column::Chain.eq(chain))
        .filter(pool_stats::Column::Height.between(first, last))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(h, s)| (h, Sats(s))).collect())
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
