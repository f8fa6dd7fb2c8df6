//! The leader lease: with several instances on one database, the instance holding a chain's
//! lease is the only one that follows and pays that chain.
//!
//! No clocks are compared between machines: the holder bumps `heartbeat` with every renewal
//! and every fenced write, and a follower times how long it has seen the same
//! `(holder, epoch, heartbeat)` on its own monotonic clock. Every takeover bumps `epoch`, and
//! every write transaction of a leader's actors first *fences* itself: it updates the lease
//! row where `holder` and `epoch` are still its own, so a leader that lost the lease (paused,
//! cut off) cannot commit anything after a takeover — the row lock orders its transaction
//! before the takeover or makes it fail.

use entity::leader_lease;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, SqlErr};

use super::{StoreError, StoreResult};

/// The lease of one chain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The instance holding it; empty when released.
    pub holder: String,
    /// Where that instance serves its API.
    pub holder_url: String,
    /// Bumped by every takeover.
    pub epoch: i64,
    /// Bumped by every renewal and every fenced write transaction.
    pub heartbeat: i64,
}

/// The lease of `chain`, if any instance ever took it.
pub async fn get(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Option<Lease>> {
    Ok(leader_lease::Entity::find_by_id(chain.to_owned())
        .one(db)
        .await?
        .map(|m| Lease {
            holder: m.holder,
            holder_url: m.holder_url,
            epoch: m.epoch,
            heartbeat: m.heartbeat,
        }))
}

/// The version of what the chain's actors wrote: `(epoch, writes)` of its lease, changed by
/// every fenced write transaction in the same commit (see [`Fence::check`]) and by [`touch`]
/// after the few writes made outside one. `None` until an instance took the lease. A read
/// cache keyed on it is never stale: read the version first, then the data.
pub async fn version(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Option<(i64, i64)>> {
    use leader_lease::Column as C;
    Ok(leader_lease::Entity::find_by_id(chain.to_owned())
        .select_only()
        .column(C::Epoch)
        .column(C::Writes)
        .into_tuple()
        .one(db)
        .await?)
}

/// The [`version`] of every chain that has a lease, by chain name, in one statement.
pub async fn versions(db: &impl ConnectionTrait) -> StoreResult<Vec<(String, i64, i64)>> {
    use leader_lease::Column as C;
    let mut rows: Vec<(String, i64, i64)> = leader_lease::Entity::find()
        .select_only()
        .column(C::Chain)
        .column(C::Epoch)
        .column(C::Writes)
        .into_tuple()
        .all(db)
        .await?;
    rows.sort_unstable();
    Ok(rows)
}

/// Changes the chain's write [`version`] after a write made outside a fenced transaction
/// (the processed block's row, the ledger check's hold, settings synced from the config).
pub async fn touch(db: &impl ConnectionTrait, chain: &str) -> StoreResult<()> {
    use leader_lease::Column as C;
    leader_lease::Entity::update_many()
        .col_expr(C::Writes, Expr::col(C::Writes).add(1))
        .filter(C::Chain.eq(chain))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes the lease of `chain` for `me` when no instance ever held it, when it was released,
/// when `me` holds it already (the same instance restarted: the old process is gone), or when
/// it is still exactly `seen` (the caller timed its silence). Returns the new epoch, or `None`
/// when another instance got there first.
pub async fn try_take(
    db: &impl ConnectionTrait,
    chain: &str,
    me: &str,
    my_url: &str,
    seen: Option<&Lease>,
) -> StoreResult<Option<i64>> {
    let Some(current) = get(db, chain).await? else {
        let row = leader_lease::ActiveModel {
            chain: Set(chain.to_owned()),
            holder: Set(me.to_owned()),
            holder_url: Set(my_url.to_owned()),
            epoch: Set(1),
            heartbeat: Set(0),
            writes: Set(0),
        };
        return match leader_lease::Entity::insert(row)
            .exec_without_returning(db)
            .await
        {
            Ok(_) => Ok(Some(1)),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(None),
            Err(e) => Err(e.into()),
        };
    };
    let free = current.holder.is_empty() || current.holder == me;
    if !free && seen != Some(&current) {
        return Ok(None);
    }
    use leader_lease::Column as C;
    // Compare-and-swap on what was read: a renewal or another takeover in between wins.
    let taken = leader_lease::Entity::update_many()
        .col_expr(C::Holder, Expr::value(me))
        .col_expr(C::HolderUrl, Expr::value(my_url))
        .col_expr(C::Epoch, Expr::value(current.epoch + 1))
        .col_expr(C::Heartbeat, Expr::value(0i64))
        .filter(C::Chain.eq(chain))
        .filter(C::Holder.eq(current.holder.as_str()))
        .filter(C::Epoch.eq(current.epoch))
        .filter(C::Heartbeat.eq(current.heartbeat))
        .exec(db)
        .await?;
    Ok((taken.rows_affected == 1).then_some(current.epoch + 1))
}

/// Renews `me`'s lease of epoch `epoch`; `false` when it is no longer ours.
pub async fn renew(
    db: &impl ConnectionTrait,
    chain: &str,
    me: &str,
    epoch: i64,
) -> StoreResult<bool> {
    bump(db, chain, me, epoch, &[leader_lease::Column::Heartbeat]).await
}

/// Gives the lease up (a clean stop), so a follower takes over without waiting.
pub async fn release(
    db: &impl ConnectionTrait,
    chain: &str,
    me: &str,
    epoch: i64,
) -> StoreResult<()> {
    use leader_lease::Column as C;
    leader_lease::Entity::update_many()
        .col_expr(C::Holder, Expr::value(""))
        .col_expr(C::HolderUrl, Expr::value(""))
        .filter(C::Chain.eq(chain))
        .filter(C::Holder.eq(me))
        .filter(C::Epoch.eq(epoch))
        .exec(db)
        .await?;
    Ok(())
}

async fn bump(
    db: &impl ConnectionTrait,
    chain: &str,
    me: &str,
    epoch: i64,
    columns: &[leader_lease::Column],
) -> StoreResult<bool> {
    use leader_lease::Column as C;
    let mut update = leader_lease::Entity::update_many();
    for &column in columns {
        update = update.col_expr(column, Expr::col(column).add(1));
    }
    let result = update
        .filter(C::Chain.eq(chain))
        .filter(C::Holder.eq(me))
        .filter(C::Epoch.eq(epoch))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// What a leader's actors write under: run [`Fence::check`] first in every write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The chain.
    pub chain: String,
    /// This instance.
    pub holder: String,
    /// The epoch it took the lease at.
    pub epoch: i64,
}

impl Fence {
    /// Begins a write transaction fenced by the lease: every write of a chain actor starts
    /// here, so a deposed leader commits nothing (see [`Fence::check`]).
    pub async fn begin(
        &self,
        db: &sea_orm::DatabaseConnection,
    ) -> StoreResult<sea_orm::DatabaseTransaction> {
        let txn = super::begin_write(db).await?;
        self.check(&txn).await?;
        Ok(txn)
    }

    /// Fails with [`StoreError::LeaseLost`] unless this instance still holds the lease at this
    /// epoch; inside a transaction, it also locks the lease row until the commit, so no
    /// takeover can happen between this check and the commit.
    pub async fn check(&self, db: &impl ConnectionTrait) -> StoreResult<()> {
        // The heartbeat too: a committed write shows followers this leader is alive, so a
        // transaction that holds the lease row longer than the lease (a block where
        // thousands of subscribers become eligible) is not followed by a takeover.
        if bump(
            db,
            &self.chain,
            &self.holder,
            self.epoch,
            &[
                leader_lease::Column::Writes,
                leader_lease::Column::Heartbeat,
            ],
        )
        .await?
        {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(format!(
                "chain {}: instance {} no longer holds the lease of epoch {}",
                self.chain, self.holder, self.epoch
            )))
        }
    }
}
