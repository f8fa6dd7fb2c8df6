//! Payments and their outputs: the crash-safe state machine of architecture §4.

use entity::{payment, payment_output};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use sea_orm::sea_query::Expr;

use super::{StoreError, StoreResult, now, parse_stored};
use crate::domain::{Height, PaymentStatus, Sats};

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Row id.
    pub id: i64,
    /// Chain name.
    pub chain: String,
    /// Where it is.
    pub status: PaymentStatus,
    /// The daemon's operation id (SUBMITTED on).
    pub opid: Option<String>,
    /// The transaction (SENT on).
    pub txid: Option<String>,
    /// Σ outputs.
    pub total: Sats,
    /// The processed height when it was planned.
    pub planned_height: Height,
    /// The height its transaction was mined at.
    pub sent_height: Option<Height>,
    /// The height it counted as confirmed at.
    pub confirmed_height: Option<Height>,
    /// The transaction's expiry height.
    pub expiry_height: Option<Height>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was planned.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its outputs: (identity, amount).
    pub outputs: Vec<(String, Sats)>,
}

async fn outputs_of(db: &impl ConnectionTrait, id: i64) -> StoreResult<Vec<(String, Sats)>> {
    Ok(payment_output::Entity::find()
        .filter(payment_output::Column::PaymentId.eq(id))
        .order_by_asc(payment_output::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.identity_address, Sats(o.amount)))
        .collect())
}

async fn from_row(db: &impl ConnectionTrait, m: payment::Model) -> StoreResult<Payment> {
    let outputs = outputs_of(db, m.id).await?;
    with_outputs(m, outputs)
}

fn with_outputs(m: payment::Model, outputs: Vec<(String, Sats)>) -> StoreResult<Payment> {
    Ok(Payment {
        status: parse_stored(&m.status, PaymentStatus::parse, "payment status")?,
        id: m.id,
        chain: m.chain,
        opid: m.opid,
        txid: m.txid,
        total: Sats(m.total),
        planned_height: m.planned_height,
        sent_height: m.sent_height,
        confirmed_height: m.confirmed_height,
        expiry_height: m.expiry_height,
        error: m.error,
        created_at: m.created_at.and_utc(),
        outputs,
    })
}

/// Records a PLANNED payment with its outputs; returns its id.
pub async fn insert_planned(
    db: &impl ConnectionTrait,
    chain: &str,
    planned_height: Height,
    outputs: &[(String, Sats)],
) -> StoreResult<i64> {
    let at = now();
    let total: Sats = outputs.iter().map(|(_, a)| *a).sum();
    let row = payment::ActiveModel {
        id: Default::default(),
        chain: Set(chain.to_owned()),
        status: Set(PaymentStatus::Planned.as_str().to_owned()),
        opid: Set(None),
        txid: Set(None),
        total: Set(total.0),
        planned_height: Set(planned_height),
        sent_height: Set(None),
        confirmed_height: Set(None),
        expiry_height: Set(None),
        error: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    let rows = outputs
        .iter()
        .map(|(identity, amount)| payment_output::ActiveModel {
            id: Default::default(),
            payment_id: Set(row.id),
            identity_address: Set(identity.clone()),
            amount: Set(amount.0),
        });
    payment_output::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(row.id)
}

/// A payment by id.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> StoreResult<Option<Payment>> {
    match payment::Entity::find_by_id(id).one(db).await? {
        Some(m) => Ok(Some(from_row(db, m).await?)),
        None => Ok(None),
    }
}

/// Payments of `chain` with one of `statuses`, oldest first.
pub async fn with_status(
    db: &impl ConnectionTrait,
    chain: &str,
    statuses: &[PaymentStatus],
) -> StoreResult<Vec<Payment>> {
    let rows = payment::Entity::find()
        .filter(payment::Column::Chain.eq(chain))
        .filter(payment::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .order_by_asc(payment::Column::Id)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(from_row(db, r).await?);
    }
    Ok(out)
}

/// The payments of `chain` not settled for good, oldest first: planned, submitted or sent, and
/// confirmed ones whose transaction is not final yet (mined above `final_at`: a payment mined
/// at or below it is past any reorganisation verusd accepts, and is no longer polled).
pub async fn unsettled(
    db: &impl ConnectionTrait,
    chain: &str,
    final_at: Height,
) -> StoreResult<Vec<Payment>> {
    use sea_orm::Condition;
    let open = [
        PaymentStatus::Planned,
        PaymentStatus::Submitted,
        PaymentStatus::Sent,
    ];
    let rows = payment::Entity::find()
        .filter(payment::Column::Chain.eq(chain))
        .filter(
            Condition::any()
                .add(payment::Column::Status.is_in(open.iter().map(|s| s.as_str())))
                .add(
                    Condition::all()
                        .add(payment::Column::Status.eq(PaymentStatus::Confirmed.as_str()))
                        .add(
                            Condition::any()
                                .add(payment::Column::SentHeight.is_null())
                                .add(payment::Column::SentHeight.gt(final_at)),
                        ),
                ),
        )
        .order_by_asc(payment::Column::Id)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(from_row(db, r).await?);
    }
    Ok(out)
}

/// Every transaction id already linked to a payment of `chain`.
pub async fn linked_txids(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<Option<String>> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Txid)
        .filter(payment::Column::Chain.eq(chain))
        .filter(payment::Column::Txid.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().flatten().collect())
}

/// Moves a payment from status `from` (as the caller read it) to `p.status`, with the fields
/// that come with it. When the stored status is no longer `from` — another instance (a new
/// leader) moved it meanwhile — nothing is written and [`StoreError::Conflict`] rolls the
/// caller's transaction back, so a stale view never overwrites a newer one.
pub async fn update(
    db: &impl ConnectionTrait,
    p: &Payment,
    from: PaymentStatus,
) -> StoreResult<()> {
    use payment::Column as C;
    let moved = payment::Entity::update_many()
        .col_expr(C::Status, Expr::value(p.status.as_str()))
        .col_expr(C::Opid, Expr::value(p.opid.clone()))
        .col_expr(C::Txid, Expr::value(p.txid.clone()))
        .col_expr(C::SentHeight, Expr::value(p.sent_height))
        .col_expr(C::ConfirmedHeight, Expr::value(p.confirmed_height))
        .col_expr(C::ExpiryHeight, Expr::value(p.expiry_height))
        .col_expr(C::Error, Expr::value(p.error.clone()))
        .col_expr(C::UpdatedAt, Expr::value(now()))
        .filter(C::Id.eq(p.id))
        .filter(C::Status.eq(from.as_str()))
        .exec(db)
        .await?;
    if moved.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "payment {} is no longer {} (another instance moved it)",
            p.id,
            from.as_str()
        )))
    }
}

/// How many payments of `chain` are in each status.
pub async fn count_by_status(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Vec<(String, i64)>> {
    Ok(payment::Entity::find()
        .select_only()
        .column(payment::Column::Status)
        .column_as(payment::Column::Id.count(), "n")
        .filter(payment::Column::Chain.eq(chain))
        .group_by(payment::Column::Status)
        .into_tuple()
        .all(db)
        .await?)
}

/// Payments newest first, optionally one status and only those paying `identity`.
pub async fn list(
    db: &impl ConnectionTrait,
    chain: &str,
    status: Option<PaymentStatus>,
    identity: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> StoreResult<Vec<Payment>> {
    let mut q = payment::Entity::find().filter(payment::Column::Chain.eq(chain));
    if let Some(s) = status {
        q = q.filter(payment::Column::Status.eq(s.as_str()));
    }
    if let Some(id) = identity {
        let ids: Vec<i64> = payment_output::Entity::find()
            .select_only()
            .column(payment_output::Column::PaymentId)
            .filter(payment_output::Column::IdentityAddress.eq(id))
            .into_tuple()
            .all(db)
            .await?;
        q = q.filter(payment::Column::Id.is_in(ids));
    }
    if let Some(b) = before {
        q = q.filter(payment::Column::Id.lt(b));
    }
    let rows = q
        .order_by_desc(payment::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(from_row(db, r).await?);
    }
    Ok(out)
}

/// The outputs of `ids`, in one statement, in each payment's order.
async fn outputs_of_many(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> StoreResult<std::collections::HashMap<i64, Vec<(String, Sats)>>> {
    let mut out: std::collections::HashMap<i64, Vec<(String, Sats)>> = Default::default();
    for slice in ids.chunks(super::IN_SLICE) {
        let rows = payment_output::Entity::find()
            .filter(payment_output::Column::PaymentId.is_in(slice.iter().copied()))
            .order_by_asc(payment_output::Column::Id)
            .all(db)
            .await?;
        for o in rows {
            out.entry(o.payment_id)
                .or_default()
                .push((o.identity_address, Sats(o.amount)));
        }
    }
    Ok(out)
}

/// The newest `limit` payments (ids below `before`) with an output to each of `identities`,
/// newest first: three statements for a page of subscribers, where [`list`] is several per
/// subscriber.
pub async fn of_identities(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
    before: Option<i64>,
    limit: u64,
) -> StoreResult<std::collections::HashMap<String, Vec<Payment>>> {
    use sea_orm::FromQueryResult;
    use sea_orm::sea_query::{Alias, ExprTrait, Query};
    let mut out: std::collections::HashMap<String, Vec<Payment>> = Default::default();
    if identities.is_empty() {
        return Ok(out);
    }
    // (identity, payment id) of each identity's newest payments on this chain (a payment has
    // at most one output per identity: `ux_payment_output`).
    let mut numbered = Query::select();
    numbered
        .column((
            payment_output::Entity,
            payment_output::Column::IdentityAddress,
        ))
        .column((payment_output::Entity, payment_output::Column::PaymentId))
        .expr_as(
            super::stakes::newest_first_by_identity("payment_output", "payment_id"),
            Alias::new("rn"),
        )
        .from(payment_output::Entity)
        .inner_join(
            payment::Entity,
            Expr::col((payment::Entity, payment::Column::Id))
                .equals((payment_output::Entity, payment_output::Column::PaymentId)),
        )
        .and_where(Expr::col((payment::Entity, payment::Column::Chain)).eq(chain))
        .and_where(
            Expr::col((
                payment_output::Entity,
                payment_output::Column::IdentityAddress,
            ))
            .is_in(identities.iter().cloned()),
        );
    if let Some(b) = before {
        numbered.and_where(
            Expr::col((payment_output::Entity, payment_output::Column::PaymentId)).lt(b),
        );
    }
    let mut page = Query::select();
    page.columns([Alias::new("identity_address"), Alias::new("payment_id")])
        .from_subquery(numbered, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).lte(limit))
        .order_by(Alias::new("payment_id"), sea_orm::Order::Desc);
    let statement = db.get_database_backend().build(&page);
    #[derive(sea_orm::FromQueryResult)]
    struct Pair {
        identity_address: String,
        payment_id: i64,
    }
    let pairs: Vec<(String, i64)> = Pair::find_by_statement(statement)
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.identity_address, p.payment_id))
        .collect();
    let mut ids: Vec<i64> = pairs.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut outputs = outputs_of_many(db, &ids).await?;
    let mut payments: std::collections::HashMap<i64, Payment> = Default::default();
    for slice in ids.chunks(super::IN_SLICE) {
        for m in payment::Entity::find()
            .filter(payment::Column::Id.is_in(slice.iter().copied()))
            .all(db)
            .await?
        {
            let outs = outputs.remove(&m.id).unwrap_or_default();
            payments.insert(m.id, with_outputs(m, outs)?);
        }
    }
    for (identity, id) in pairs {
        if let Some(p) = payments.get(&id) {
            let list = out.entry(identity).or_default();
            list.push(p.clone());
        }
    }
    Ok(out)
}
