//! Webhook delivery state: per configured webhook, the cursor of the last event it received
//! and the failure being retried. Written only by that webhook's deliverer.

use entity::webhook_state;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{StoreResult, now};

/// Where a webhook's deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookState {
    /// The webhook's configured name.
    pub name: String,
    /// The last event delivered (acknowledged with a 2xx).
    pub cursor: i64,
    /// Failed attempts at the event after `cursor`.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Events delivered so far.
    pub delivered: i64,
}

fn from_row(m: webhook_state::Model) -> WebhookState {
    WebhookState {
        name: m.name,
        cursor: m.cursor,
        attempts: m.attempts,
        last_error: m.last_error,
        delivered: m.delivered,
    }
}

/// The state of `name`, created at `start` (deliveries begin after that event) the first
/// time a webhook of that name runs.
pub async fn get_or_create(
    db: &impl ConnectionTrait,
    name: &str,
    start: i64,
) -> StoreResult<WebhookState> {
    // Only this webhook's deliverer writes its row, so find-then-insert does not race.
    if let Some(row) = webhook_state::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
    {
        return Ok(from_row(row));
    }
    webhook_state::Entity::insert(webhook_state::ActiveModel {
        name: Set(name.to_owned()),
        cursor: Set(start),
        attempts: Set(0),
        last_error: Set(None),
        delivered: Set(0),
        updated_at: Set(now()),
    })
    .exec_without_returning(db)
    .await?;
    let row = webhook_state::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| super::StoreError::Corrupt(format!("webhook state {name} vanished")))?;
    Ok(from_row(row))
}

/// Every webhook's state, by name.
pub async fn list(db: &impl ConnectionTrait) -> StoreResult<Vec<WebhookState>> {
    Ok(webhook_state::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The event `cursor` was delivered (or does not concern this webhook): move past it.
pub async fn advance(
    db: &impl ConnectionTrait,
    name: &str,
    cursor: i64,
    delivered: bool,
) -> StoreResult<()> {
    webhook_state::Entity::update_many()
        .col_expr(webhook_state::Column::Cursor, Expr::value(cursor))
        .col_expr(webhook_state::Column::Attempts, Expr::value(0))
        .col_expr(
            webhook_state::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            webhook_state::Column::Delivered,
            Expr::col(webhook_state::Column::Delivered).add(i64::from(delivered)),
        )
        .col_expr(webhook_state::Column::UpdatedAt, Expr::value(now()))
        .filter(webhook_state::Column::Name.eq(name))
        .filter(webhook_state::Column::Cursor.lt(cursor))
        .exec(db)
        .await?;
    Ok(())
}

/// An attempt at the event after the cursor failed.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    name: &str,
    attempts: i32,
    error: &str,
) -> StoreResult<()> {
    webhook_state::Entity::update_many()
        .col_expr(webhook_state::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_state::Column::LastError, Expr::value(error))
        .col_expr(webhook_state::Column::UpdatedAt, Expr::value(now()))
        .filter(webhook_state::Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(())
}
