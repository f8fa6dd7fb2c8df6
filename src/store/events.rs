//! The event log. An event is written by the actor that makes the change it reports, in the
//! same transaction (architecture §5). Ids come from the `event` counter row, which every
//! event-writing transaction updates: the row lock serialises those transactions, so ids
//! follow commit order and a reader that has seen id N has seen every event below N.

use entity::{counter, event, payment_output};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{StoreError, StoreResult, now, parse_stored};
use crate::domain::{EventKind, Height, IdentityAlertKind};

const EVENT_COUNTER: &str = "event";

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Chain name.
    pub chain: String,
    /// What happened.
    pub kind: EventKind,
    /// For `IDENTITY_ALERT`: what changed.
    pub alert: Option<IdentityAlertKind>,
    /// The block height it happened at.
    pub height: Option<Height>,
    /// The identity concerned.
    pub identity_address: Option<String>,
    /// The stake's block hash.
    pub block_hash: Option<String>,
    /// The payment.
    pub payment_id: Option<i64>,
    /// A sentence for people.
    pub message: String,
    /// Extra machine-readable detail.
    pub data: Option<serde_json::Value>,
}

impl NewEvent {
    /// An event with only the required parts; set the rest with struct update syntax.
    pub fn new(chain: &str, kind: EventKind, message: impl Into<String>) -> NewEvent {
        NewEvent {
            chain: chain.to_owned(),
            kind,
            alert: None,
            height: None,
            identity_address: None,
            block_hash: None,
            payment_id: None,
            message: message.into(),
            data: None,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the log; the API's cursor.
    pub id: i64,
    /// The event.
    pub event: NewEvent,
    /// When it was written.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl StoredEvent {
    /// The identities the event is about: its identity, and for a payment every identity it
    /// pays (from the outputs recorded with the event).
    pub fn identities(&self) -> impl Iterator<Item = &str> {
        let outputs = self
            .event
            .data
            .as_ref()
            .and_then(|d| d.get("outputs"))
            .and_then(|o| o.as_array())
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("identityAddress").and_then(|a| a.as_str()));
        self.event
            .identity_address
            .as_deref()
            .into_iter()
            .chain(outputs)
    }

    /// Whether the event passes `filter` (the same test [`list`] makes in SQL).
    pub fn matches(&self, filter: &EventFilter) -> bool {
        filter.after.is_none_or(|a| self.id > a)
            && filter.chain.as_ref().is_none_or(|c| *c == self.event.chain)
            && (filter.kinds.is_empty() || filter.kinds.contains(&self.event.kind))
            && filter
                .identity_address
                .as_deref()
                .is_none_or(|wanted| self.identities().any(|i| i == wanted))
    }
}

/// Appends events and returns their ids. Call it inside the transaction of the change the
/// events report: the ids are reserved by updating the counter row, which stays locked until
/// that transaction ends.
pub async fn append(db: &impl ConnectionTrait, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let n =
        i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("too many events".into()))?;
    let updated = counter::Entity::update_many()
        .col_expr(
            counter::Column::Value,
            Expr::col(counter::Column::Value).add(n),
        )
        .filter(counter::Column::Name.eq(EVENT_COUNTER))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Corrupt(
            "the event counter row is missing; run the migrations".into(),
        ));
    }
    let last = counter::Entity::find_by_id(EVENT_COUNTER.to_owned())
        .one(db)
        .await?
        .map(|c| c.value)
        .ok_or_else(|| StoreError::Corrupt("the event counter row is missing".into()))?;
    let first = last - n + 1;
    let at = now();
    let rows: Vec<event::ActiveModel> = events
        .iter()
        .enumerate()
        .map(|(i, e)| event::ActiveModel {
            id: Set(first + i as i64),
            chain: Set(e.chain.clone()),
            kind: Set(e.kind.as_str().to_owned()),
            alert: Set(e.alert.map(|a| a.as_str().to_owned())),
            height: Set(e.height),
            identity_address: Set(e.identity_address.clone()),
            block_hash: Set(e.block_hash.clone()),
            payment_id: Set(e.payment_id),
            message: Set(e.message.clone()),
            data: Set(e.data.as_ref().map(|d| d.to_string())),
            created_at: Set(at),
        })
        .collect();
    // In slices: one statement's bound variables stay far below SQLite's limit (32,766) when
    // a block makes thousands of events.
    for chunk in rows.chunks(500) {
        event::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok((first..=last).collect())
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this chain.
    pub chain: Option<String>,
    /// Only ids above this.
    pub after: Option<i64>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<EventKind>,
    /// Only events about this identity.
    pub identity_address: Option<String>,
}

fn to_stored(m: event::Model) -> StoreResult<StoredEvent> {
    let kind = parse_stored(&m.kind, EventKind::parse, "event kind")?;
    let alert = m
        .alert
        .as_deref()
        .map(|a| parse_stored(a, IdentityAlertKind::parse, "alert kind"))
        .transpose()?;
    let data = m
        .data
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("event {} data: {e}", m.id)))?;
    Ok(StoredEvent {
        id: m.id,
        created_at: m.created_at.and_utc(),
        event: NewEvent {
            chain: m.chain,
            kind,
            alert,
            height: m.height,
            identity_address: m.identity_address,
            block_hash: m.block_hash,
            payment_id: m.payment_id,
            message: m.message,
            data,
        },
    })
}

/// Up to `limit` events matching `filter`, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &EventFilter,
    limit: u64,
) -> StoreResult<Vec<StoredEvent>> {
    let mut q = event::Entity::find();
    if let Some(chain) = &filter.chain {
        q = q.filter(event::Column::Chain.eq(chain.as_str()));
    }
    if let Some(after) = filter.after {
        q = q.filter(event::Column::Id.gt(after));
    }
    if !filter.kinds.is_empty() {
        q = q.filter(event::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(identity) = &filter.identity_address {
        // A payment is about every identity it pays.
        let paid = Query::select()
            .column(payment_output::Column::PaymentId)
            .from(payment_output::Entity)
            .and_where(payment_output::Column::IdentityAddress.eq(identity.as_str()))
            .to_owned();
        q = q.filter(
            Condition::any()
                .add(event::Column::IdentityAddress.eq(identity.as_str()))
                .add(event::Column::PaymentId.in_subquery(paid)),
        );
    }
    q.order_by_asc(event::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_stored)
        .collect()
}

/// The highest event id written so far (0 when none).
pub async fn last_id(db: &impl ConnectionTrait) -> StoreResult<i64> {
    Ok(counter::Entity::find_by_id(EVENT_COUNTER.to_owned())
        .one(db)
        .await?
        .map_or(0, |c| c.value))
}
