//! Admin and subscriber actions on one identity (ban, unban, start following it), each at the
//! first height the pool had not processed when it was asked for. They are decisions, not
//! chain facts (architecture §6): a reorganisation undoes their effect with the blocks, and the
//! registry applies them again when it connects their height, so they survive any
//! reorganisation and a pool that follows the same chain with the same actions ends the same.

use entity::registry_action;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

use super::{StoreResult, now, parse_stored};
use crate::domain::{ActionKind, Height};

/// One stored action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Row id: actions at one height apply in id order.
    pub id: i64,
    /// The height it takes effect at.
    pub height: Height,
    /// The identity.
    pub identity_address: String,
    /// What it does.
    pub kind: ActionKind,
    /// Its effect is in the tables on the current branch.
    pub applied: bool,
    /// Its events were written once.
    pub announced: bool,
}

fn from_row(m: registry_action::Model) -> StoreResult<Action> {
    Ok(Action {
        kind: parse_stored(&m.kind, ActionKind::parse, "registry action kind")?,
        id: m.id,
        height: m.height,
        identity_address: m.identity_address,
        applied: m.applied,
        announced: m.announced,
    })
}

/// Stores an action at `height` (not applied yet).
pub async fn record(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
    identity: &str,
    kind: ActionKind,
) -> StoreResult<Action> {
    let row = registry_action::ActiveModel {
        id: Default::default(),
        chain: Set(chain.to_owned()),
        height: Set(height),
        identity_address: Set(identity.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        applied: Set(false),
        announced: Set(false),
        created_at: Set(now()),
    }
    .insert(db)
    .await?;
    from_row(row)
}

/// [`record`] of one action per identity (distinct; a seeding chunk, `SEED_CHUNK` at most),
/// in `identities`' order, in three statements. Call it inside the chain's fenced transaction: the new rows are
/// told apart from older ones by their ids (above the table's highest before the insert), and
/// no other transaction writes this chain's actions until it commits. Both reads go by the
/// primary key alone, so they cost the same however many actions are stored (filtering by
/// chain there made SQLite walk every action of the chain: at 100,000 identities followed at
/// start, the last chunks' writes took 100 ms instead of 28).
pub async fn record_many(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
    identities: &[&str],
    kind: ActionKind,
) -> StoreResult<Vec<Action>> {
    use sea_orm::QuerySelect;
    if identities.is_empty() {
        return Ok(Vec::new());
    }
    let before: Option<i64> = registry_action::Entity::find()
        .select_only()
        .column_as(registry_action::Column::Id.max(), "max_id")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    let at = now();
    let rows = identities
        .iter()
        .map(|identity| registry_action::ActiveModel {
            id: Default::default(),
            chain: Set(chain.to_owned()),
            height: Set(height),
            identity_address: Set((*identity).to_owned()),
            kind: Set(kind.as_str().to_owned()),
            applied: Set(false),
            announced: Set(false),
            created_at: Set(at),
        });
    registry_action::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    // Other chains' registries may have inserted since: theirs are left out here.
    let mut stored: std::collections::HashMap<String, Action> = registry_action::Entity::find()
        .filter(registry_action::Column::Id.gt(before.unwrap_or(0)))
        .all(db)
        .await?
        .into_iter()
        .filter(|m| m.chain == chain)
        .map(|m| from_row(m).map(|a| (a.identity_address.clone(), a)))
        .collect::<StoreResult<_>>()?;
    identities
        .iter()
        .map(|identity| {
            stored.remove(*identity).ok_or_else(|| {
                super::StoreError::Corrupt(format!(
                    "the {} action of {identity} at {height} was not stored",
                    kind.as_str()
                ))
            })
        })
        .collect()
}

/// The actions at `height` not applied on the current branch, in the order they were asked.
pub async fn unapplied_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Vec<Action>> {
    registry_action::Entity::find()
        .filter(registry_action::Column::Chain.eq(chain))
        .filter(registry_action::Column::Height.eq(height))
        .filter(registry_action::Column::Applied.eq(false))
        .order_by_asc(registry_action::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Every action of a chain, oldest first (to copy a pool's decisions, and for audits).
pub async fn all(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Vec<Action>> {
    registry_action::Entity::find()
        .filter(registry_action::Column::Chain.eq(chain))
        .order_by_asc(registry_action::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Records that an action's effect is in the tables and its events were written.
pub async fn mark_applied(db: &impl ConnectionTrait, id: i64) -> StoreResult<()> {
    registry_action::Entity::update_many()
        .col_expr(registry_action::Column::Applied, true.into())
        .col_expr(registry_action::Column::Announced, true.into())
        .filter(registry_action::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// [`mark_applied`] of several actions, one statement per 500.
pub async fn mark_applied_many(db: &impl ConnectionTrait, ids: &[i64]) -> StoreResult<()> {
    for slice in ids.chunks(super::IN_SLICE) {
        registry_action::Entity::update_many()
            .col_expr(registry_action::Column::Applied, true.into())
            .col_expr(registry_action::Column::Announced, true.into())
            .filter(registry_action::Column::Id.is_in(slice.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The block at `height` was disconnected, and the effects of the actions from that height up
/// with it (see [`crate::store::subscribers::undo_from`]): they apply again when their height
/// is connected again.
pub async fn unapply_from(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<()> {
    registry_action::Entity::update_many()
        .col_expr(registry_action::Column::Applied, false.into())
        .filter(registry_action::Column::Chain.eq(chain))
        .filter(registry_action::Column::Height.gte(height))
        .exec(db)
        .await?;
    Ok(())
}
