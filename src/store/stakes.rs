//! Stakes and the credits of matured stakes.

use entity::{credit, stake};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::{StoreError, StoreResult, now, parse_stored};
use crate::domain::{FeeRate, Height, Sats, StakeStatus, Work};

/// A stake as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stake {
    /// Row id (list cursor).
    pub id: i64,
    /// Chain name.
    pub chain: String,
    /// The staked block.
    pub block_hash: String,
    /// Its height.
    pub height: Height,
    /// Who staked (`postxddest`).
    pub found_by: String,
    /// The reward (coinbase output 0).
    pub reward: Sats,
    /// Its fate.
    pub status: StakeStatus,
    /// Staked by a known identity that was not ACTIVE: credited to it alone.
    pub solo: bool,
    /// Staked by the pool identity: the pool's own.
    pub pool_own: bool,
    /// First height of the round it closes (provisional until MATURED).
    pub round_start_height: Height,
    /// Σ work of the round (provisional until MATURED).
    pub total_work: Work,
    /// What the pool kept (set at maturity).
    pub pool_keep: Option<Sats>,
    /// The coinbase transaction.
    pub coinbase_txid: Option<String>,
    /// The height its status last changed at.
    pub status_height: Option<Height>,
    /// Why (no work in the round, StakeGuard, …).
    pub note: Option<String>,
}

fn from_row(m: stake::Model) -> StoreResult<Stake> {
    Ok(Stake {
        status: parse_stored(&m.status, StakeStatus::parse, "stake status")?,
        total_work: m
            .total_work
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("stake {}: {e}", m.id)))?,
        id: m.id,
        chain: m.chain,
        block_hash: m.block_hash,
        height: m.height,
        found_by: m.found_by,
        reward: Sats(m.reward),
        solo: m.solo,
        pool_own: m.pool_own,
        round_start_height: m.round_start_height,
        pool_keep: m.pool_keep.map(Sats),
        coinbase_txid: m.coinbase_txid,
        status_height: m.status_height,
        note: m.note,
    })
}

/// Records a found stake (MATURING); if the same block comes back after a reorganisation,
/// the row is reused.
pub async fn insert(db: &impl ConnectionTrait, s: &Stake) -> StoreResult<i64> {
    if let Some(existing) = get(db, &s.chain, &s.block_hash).await? {
        let mut am: stake::ActiveModel = stake::Entity::find_by_id(existing.id)
            .one(db)
            .await?
            .ok_or_else(|| StoreError::Corrupt("stake vanished".into()))?
            .into();
        am.status = Set(StakeStatus::Maturing.as_str().to_owned());
        am.round_start_height = Set(s.round_start_height);
        am.total_work = Set(s.total_work.to_string());
        am.status_height = Set(Some(s.height));
        am.solo = Set(s.solo);
        am.pool_own = Set(s.pool_own);
        am.note = Set(None);
        am.updated_at = Set(now());
        am.update(db).await?;
        return Ok(existing.id);
    }
    let at = now();
    let row = stake::ActiveModel {
        id: Default::default(),
        chain: Set(s.chain.clone()),
        block_hash: Set(s.block_hash.clone()),
        height: Set(s.height),
        found_by: Set(s.found_by.clone()),
        reward: Set(s.reward.0),
        status: Set(s.status.as_str().to_owned()),
        solo: Set(s.solo),
        pool_own: Set(s.pool_own),
        round_start_height: Set(s.round_start_height),
        total_work: Set(s.total_work.to_string()),
        pool_keep: Set(s.pool_keep.map(|p| p.0)),
        source_txid: Set(None),
        source_vout: Set(None),
        source_amount: Set(None),
        status_height: Set(s.status_height),
        note: Set(s.note.clone()),
        coinbase_txid: Set(s.coinbase_txid.clone()),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

/// How many stakes of `chain` are in each status.
pub async fn count_by_status(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Vec<(String, i64)>> {
    Ok(stake::Entity::find()
        .select_only()
        .column(stake::Column::Status)
        .column_as(stake::Column::Id.count(), "n")
        .filter(stake::Column::Chain.eq(chain))
        .group_by(stake::Column::Status)
        .into_tuple()
        .all(db)
        .await?)
}

/// The stake of a block.
pub async fn get(
    db: &impl ConnectionTrait,
    chain: &str,
    block_hash: &str,
) -> StoreResult<Option<Stake>> {
    stake::Entity::find()
        .filter(stake::Column::Chain.eq(chain))
        .filter(stake::Column::BlockHash.eq(block_hash))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// The block hashes of the stakes `ids`, in one query.
pub async fn block_hashes(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> StoreResult<std::collections::HashMap<i64, String>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(stake::Entity::find()
        .filter(stake::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.block_hash))
        .collect())
}

/// A stake by id.
pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> StoreResult<Option<Stake>> {
    stake::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// Heights in `from ..= to` where the pool found a stake that is not stale.
pub async fn heights_between(
    db: &impl ConnectionTrait,
    chain: &str,
    from: Height,
    to: Height,
) -> StoreResult<Vec<Height>> {
    Ok(stake::Entity::find()
        .select_only()
        .column(stake::Column::Height)
        .filter(stake::Column::Chain.eq(chain))
        .filter(stake::Column::Height.between(from, to))
        .filter(stake::Column::Status.ne(StakeStatus::Stale.as_str()))
        .into_tuple::<i64>()
        .all(db)
        .await?)
}

/// Stakes with `status`, oldest first.
pub async fn with_status(
    db: &impl ConnectionTrait,
    chain: &str,
    status: StakeStatus,
) -> StoreResult<Vec<Stake>> {
    stake::Entity::find()
        .filter(stake::Column::Chain.eq(chain))
        .filter(stake::Column::Status.eq(status.as_str()))
        .order_by_asc(stake::Column::Height)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Stakes found at `height` or whose status changed at it.
pub async fn touched_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Vec<Stake>> {
    stake::Entity::find()
        .filter(stake::Column::Chain.eq(chain))
        .filter(
            Condition::any()
                .add(stake::Column::Height.eq(height))
                .add(stake::Column::StatusHeight.eq(height)),
        )
        .order_by_asc(stake::Column::Height)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// The end of the last round before `height`: the highest pool stake below it that is not
/// STALE or STAKEGUARD (solo stakes and the pool's own end no round).
pub async fn last_round_end(
    db: &impl ConnectionTrait,
    chain: &str,
    before: Height,
) -> StoreResult<Option<Height>> {
    Ok(stake::Entity::find()
        .filter(stake::Column::Chain.eq(chain))
        .filter(stake::Column::Height.lt(before))
        .filter(stake::Column::Solo.eq(false))
        .filter(stake::Column::PoolOwn.eq(false))
        .filter(stake::Column::Status.is_in([
            StakeStatus::Maturing.as_str(),
            StakeStatus::Matured.as_str(),
        ]))
        .order_by_desc(stake::Column::Height)
        .one(db)
        .await?
        .map(|m| m.height))
}

/// Changes a stake's status (and round figures).
pub async fn update(db: &impl ConnectionTrait, s: &Stake) -> StoreResult<()> {
    let mut am: stake::ActiveModel = stake::Entity::find_by_id(s.id)
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("stake {} vanished", s.id)))?
        .into();
    am.status = Set(s.status.as_str().to_owned());
    am.round_start_height = Set(s.round_start_height);
    am.total_work = Set(s.total_work.to_string());
    am.pool_keep = Set(s.pool_keep.map(|p| p.0));
    am.status_height = Set(s.status_height);
    am.note = Set(s.note.clone());
    am.updated_at = Set(now());
    am.update(db).await?;
    Ok(())
}

/// Stakes newest first, optionally only one status and only those found by or credited to
/// `identity`, with ids below `before`.
pub async fn list(
    db: &impl ConnectionTrait,
    chain: &str,
    status: Option<StakeStatus>,
    identity: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> StoreResult<Vec<Stake>> {
    let mut q = stake::Entity::find().filter(stake::Column::Chain.eq(chain));
    if let Some(s) = status {
        q = q.filter(stake::Column::Status.eq(s.as_str()));
    }
    if let Some(id) = identity {
        let credited: Vec<i64> = credit::Entity::find()
            .select_only()
            .column(credit::Column::StakeId)
            .filter(credit::Column::Chain.eq(chain))
            .filter(credit::Column::IdentityAddress.eq(id))
            .into_tuple()
            .all(db)
            .await?;
        q = q.filter(
            Condition::any()
                .add(stake::Column::FoundBy.eq(id))
                .add(stake::Column::Id.is_in(credited)),
        );
    }
    if let Some(b) = before {
        q = q.filter(stake::Column::Id.lt(b));
    }
    q.order_by_desc(stake::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// One credit of a matured stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    /// Row id.
    pub id: i64,
    /// The stake.
    pub stake_id: i64,
    /// Who.
    pub identity_address: String,
    /// The stake's height.
    pub height: Height,
    /// The work behind it.
    pub work: Work,
    /// Credited.
    pub amount: Sats,
    /// Taken as fee from its share.
    pub fee: Sats,
    /// The fee rate applied.
    pub fee_rate: FeeRate,
}

fn credit_from(m: credit::Model) -> StoreResult<Credit> {
    Ok(Credit {
        id: m.id,
        stake_id: m.stake_id,
        identity_address: m.identity_address,
        height: m.height,
        work: m
            .work
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("credit {}: {e}", m.id)))?,
        amount: Sats(m.amount),
        fee: Sats(m.fee),
        fee_rate: u32::try_from(m.fee_ppm)
            .ok()
            .and_then(FeeRate::from_ppm)
            .unwrap_or_default(),
    })
}

/// Stores the credits of a stake.
pub async fn insert_credits(
    db: &impl ConnectionTrait,
    chain: &str,
    credits: &[Credit],
) -> StoreResult<()> {
    let at = now();
    for chunk in credits.chunks(500) {
        let rows = chunk.iter().map(|c| credit::ActiveModel {
            id: Default::default(),
            chain: Set(chain.to_owned()),
            stake_id: Set(c.stake_id),
            identity_address: Set(c.identity_address.clone()),
            height: Set(c.height),
            work: Set(c.work.to_string()),
            amount: Set(c.amount.0),
            fee: Set(c.fee.0),
            fee_ppm: Set(i64::from(c.fee_rate.ppm())),
            created_at: Set(at),
        });
        credit::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Every credit of a stake, largest work first (the order they were written in).
pub async fn credits_of_stake(
    db: &impl ConnectionTrait,
    stake_id: i64,
) -> StoreResult<Vec<Credit>> {
    credits_of_stake_page(db, stake_id, None, None).await
}

/// Up to `limit` credits of a stake, largest work first (the order they were written in),
/// after the credit of `after_identity`.
pub async fn credits_of_stake_page(
    db: &impl ConnectionTrait,
    stake_id: i64,
    after_identity: Option<&str>,
    limit: Option<u64>,
) -> StoreResult<Vec<Credit>> {
    let mut q = credit::Entity::find().filter(credit::Column::StakeId.eq(stake_id));
    if let Some(after) = after_identity {
        let last = credit::Entity::find()
            .filter(credit::Column::StakeId.eq(stake_id))
            .filter(credit::Column::IdentityAddress.eq(after))
            .one(db)
            .await?;
        // An identity without a credit here: nothing comes after it.
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        q = q.filter(credit::Column::Id.gt(last.id));
    }
    q.order_by_asc(credit::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(credit_from)
        .collect()
}

/// An identity's credits, newest first, with ids below `before`.
pub async fn credits_of_identity(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    before: Option<i64>,
    limit: u64,
) -> StoreResult<Vec<Credit>> {
    let mut q = credit::Entity::find()
        .filter(credit::Column::Chain.eq(chain))
        .filter(credit::Column::IdentityAddress.eq(identity));
    if let Some(b) = before {
        q = q.filter(credit::Column::Id.lt(b));
    }
    q.order_by_desc(credit::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(credit_from)
        .collect()
}

/// Forgets the credits of a stake (its maturity was disconnected).
pub async fn delete_credits(db: &impl ConnectionTrait, stake_id: i64) -> StoreResult<()> {
    credit::Entity::delete_many()
        .filter(credit::Column::StakeId.eq(stake_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The window expression numbering each identity's rows newest first, for "the newest `n` of
/// each" in one statement (SQLite ≥ 3.25, PostgreSQL, MariaDB ≥ 10.2 all have `ROW_NUMBER`).
pub(crate) fn newest_first_by_identity(
    table: &str,
    order_column: &str,
) -> sea_orm::sea_query::Expr {
    sea_orm::sea_query::Expr::cust(format!(
        "ROW_NUMBER() OVER (PARTITION BY {table}.identity_address ORDER BY {table}.{order_column} DESC)"
    ))
}

/// The newest `limit` credits of each of `identities` (ids below `before`), newest first: one
/// statement for a page of subscribers, where [`credits_of_identity`] is one per subscriber.
pub async fn credits_of_identities(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
    before: Option<i64>,
    limit: u64,
) -> StoreResult<std::collections::HashMap<String, Vec<Credit>>> {
    use sea_orm::FromQueryResult;
    use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
    let mut out: std::collections::HashMap<String, Vec<Credit>> = Default::default();
    if identities.is_empty() {
        return Ok(out);
    }
    let mut numbered = Query::select();
    numbered
        .column(Asterisk)
        .expr_as(newest_first_by_identity("credit", "id"), Alias::new("rn"))
        .from(credit::Entity)
        .and_where(credit::Column::Chain.eq(chain))
        .and_where(credit::Column::IdentityAddress.is_in(identities.iter().cloned()));
    if let Some(b) = before {
        numbered.and_where(credit::Column::Id.lt(b));
    }
    let mut page = Query::select();
    page.column(Asterisk)
        .from_subquery(numbered, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).lte(limit))
        .order_by(Alias::new("id"), sea_orm::Order::Desc);
    let statement = db.get_database_backend().build(&page);
    for row in credit::Model::find_by_statement(statement).all(db).await? {
        let c = credit_from(row)?;
        out.entry(c.identity_address.clone()).or_default().push(c);
    }
    Ok(out)
}

/// One page of a stake's credits: up to `limit`, largest work first (the order they were
/// written in), after the credit of `after_identity`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StakePage {
    /// The stake.
    pub stake_id: i64,
    /// The identity of the last credit already read.
    pub after_identity: Option<String>,
    /// Page size.
    pub limit: u64,
}

/// [`credits_of_stake_page`] for many pages of one size: two statements for pages of distinct
/// stakes (two pages of one stake, with different `after`, go in another round).
pub async fn credits_of_stake_pages(
    db: &impl ConnectionTrait,
    pages: &[StakePage],
    limit: u64,
) -> StoreResult<std::collections::HashMap<StakePage, Vec<Credit>>> {
    let mut out = std::collections::HashMap::new();
    let mut rest: Vec<&StakePage> = pages.iter().collect();
    while !rest.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (round, later): (Vec<&StakePage>, Vec<&StakePage>) =
            rest.into_iter().partition(|p| seen.insert(p.stake_id));
        out.extend(credits_of_distinct_stake_pages(db, &round, limit).await?);
        rest = later;
    }
    Ok(out)
}

async fn credits_of_distinct_stake_pages(
    db: &impl ConnectionTrait,
    pages: &[&StakePage],
    limit: u64,
) -> StoreResult<std::collections::HashMap<StakePage, Vec<Credit>>> {
    use sea_orm::FromQueryResult;
    use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
    let mut out: std::collections::HashMap<StakePage, Vec<Credit>> = Default::default();
    // Where each page starts: after the credit of its `after_identity`, if that has one.
    let mut wanted = Condition::any();
    let mut with_after = false;
    for p in pages.iter() {
        if let Some(after) = &p.after_identity {
            with_after = true;
            wanted = wanted.add(
                Condition::all()
                    .add(credit::Column::StakeId.eq(p.stake_id))
                    .add(credit::Column::IdentityAddress.eq(after.as_str())),
            );
        }
    }
    let mut starts: std::collections::HashMap<(i64, String), i64> = Default::default();
    if with_after {
        for c in credit::Entity::find().filter(wanted).all(db).await? {
            starts.insert((c.stake_id, c.identity_address), c.id);
        }
    }
    let mut range = Condition::any();
    let mut any = false;
    for p in pages {
        match &p.after_identity {
            None => range = range.add(credit::Column::StakeId.eq(p.stake_id)),
            Some(after) => match starts.get(&(p.stake_id, after.clone())) {
                Some(id) => {
                    range = range.add(
                        Condition::all()
                            .add(credit::Column::StakeId.eq(p.stake_id))
                            .add(credit::Column::Id.gt(*id)),
                    )
                }
                // An identity without a credit here: nothing comes after it.
                None => continue,
            },
        }
        any = true;
    }
    if !any {
        return Ok(pages.iter().map(|p| ((*p).clone(), Vec::new())).collect());
    }
    let mut numbered = Query::select();
    numbered
        .column(Asterisk)
        .expr_as(
            Expr::cust("ROW_NUMBER() OVER (PARTITION BY credit.stake_id ORDER BY credit.id)"),
            Alias::new("rn"),
        )
        .from(credit::Entity)
        .cond_where(range);
    let mut page = Query::select();
    page.column(Asterisk)
        .from_subquery(numbered, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).lte(limit))
        .order_by(Alias::new("id"), sea_orm::Order::Asc);
    let statement = db.get_database_backend().build(&page);
    let mut by_stake: std::collections::HashMap<i64, Vec<Credit>> = Default::default();
    for row in credit::Model::find_by_statement(statement).all(db).await? {
        let c = credit_from(row)?;
        by_stake.entry(c.stake_id).or_default().push(c);
    }
    for p in pages {
        let rows = by_stake.remove(&p.stake_id).unwrap_or_default();
        out.insert((*p).clone(), rows);
    }
    Ok(out)
}
