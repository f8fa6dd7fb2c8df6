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
