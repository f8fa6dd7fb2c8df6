//! Balances and the ledger that journals them. Every change of a balance is one ledger entry
//! written in the same transaction, so the balances can always be re-derived and checked:
//! Σ credits = Σ pending + Σ in flight + Σ paid (architecture §4).

use entity::{balance, ledger_entry};
use std::collections::BTreeMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IdenStatic,
    QueryFilter, QuerySelect,
};

use super::{StoreError, StoreResult, now, sum_i64};
use crate::domain::{Height, Sats};

/// Kinds of ledger entries and what each does to the identity's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerKind {
    /// A share of a matured stake: `pending += amount`, `credited += amount`.
    Credit,
    /// What the pool keeps of a matured stake (fees and rounding); the pool's own account.
    PoolKeep,
    /// Moved into a planned payment: `pending -= amount`, `in_flight += amount`.
    PaymentPlanned,
    /// A failed payment gives it back: `in_flight -= amount`, `pending += amount`.
    PaymentFailed,
    /// A payment confirmed: `in_flight -= amount`, `paid += amount`.
    PaymentConfirmed,
    /// A confirmed payment's block was disconnected: `paid -= amount`, `in_flight += amount`.
    PaymentUnconfirmed,
}

impl LedgerKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Credit => "CREDIT",
            LedgerKind::PoolKeep => "POOL_KEEP",
            LedgerKind::PaymentPlanned => "PAYMENT_PLANNED",
            LedgerKind::PaymentFailed => "PAYMENT_FAILED",
            LedgerKind::PaymentConfirmed => "PAYMENT_CONFIRMED",
            LedgerKind::PaymentUnconfirmed => "PAYMENT_UNCONFIRMED",
        }
    }

    /// (Δpending, Δin_flight, Δpaid, Δcredited) for an amount.
    fn deltas(self, a: i64) -> (i64, i64, i64, i64) {
        match self {
            LedgerKind::Credit => (a, 0, 0, a),
            LedgerKind::PoolKeep => (0, 0, 0, 0),
            LedgerKind::PaymentPlanned => (-a, a, 0, 0),
            LedgerKind::PaymentFailed => (a, -a, 0, 0),
            LedgerKind::PaymentConfirmed => (0, -a, a, 0),
            LedgerKind::PaymentUnconfirmed => (0, a, -a, 0),
        }
    }
}

/// A ledger entry to post.
#[derive(Debug, Clone)]
pub struct Posting<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The identity; `None` is the pool's own account.
    pub identity_address: Option<&'a str>,
    /// What it is.
    pub kind: LedgerKind,
    /// How much (positive).
    pub amount: Sats,
    /// The stake it comes from.
    pub stake_id: Option<i64>,
    /// The payment it belongs to.
    pub payment_id: Option<i64>,
    /// The height it happened at.
    pub height: Option<Height>,
}

/// One identity's balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    /// Credited and not yet in a payment.
    pub pending: Sats,
    /// In a payment that is not confirmed yet.
    pub in_flight: Sats,
    /// Paid and confirmed.
    pub paid: Sats,
    /// Everything ever credited.
    pub credited: Sats,
}

/// Writes the entry and applies it to the balance. Call it in the transaction of the change.
pub async fn post(db: &impl ConnectionTrait, p: &Posting<'_>) -> StoreResult<()> {
    post_many(db, std::slice::from_ref(p)).await
}

/// Writes the entries and applies them to the balances, with multi-row statements (500 rows
/// each): a stake that matures over 10,000 subscribers is 40 statements, not 30,000. Call it in
/// the transaction of the change.
pub async fn post_many(db: &impl ConnectionTrait, postings: &[Posting<'_>]) -> StoreResult<()> {
    if let Some(p) = postings.iter().find(|p| p.amount.0 < 0) {
        return Err(StoreError::Corrupt(format!(
            "negative ledger amount {}",
            p.amount
        )));
    }
    let at = now();
    for chunk in postings.chunks(500) {
        let rows = chunk.iter().map(|p| ledger_entry::ActiveModel {
            id: Default::default(),
            chain: Set(p.chain.to_owned()),
            identity_address: Set(p.identity_address.map(str::to_owned)),
            kind: Set(p.kind.as_str().to_owned()),
            amount: Set(p.amount.0),
            stake_id: Set(p.stake_id),
            payment_id: Set(p.payment_id),
            height: Set(p.height),
            created_at: Set(at),
        });
        ledger_entry::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    let mut deltas: BTreeMap<(&str, &str), Deltas> = BTreeMap::new();
    for p in postings {
        if let Some(identity) = p.identity_address {
            deltas
                .entry((p.chain, identity))
                .or_default()
                .add(p.kind.deltas(p.amount.0));
        }
    }
    apply_deltas(db, &deltas, at).await
}

/// Changes of one balance: (pending, in flight, paid, credited).
#[derive(Debug, Clone, Copy, Default)]
struct Deltas(i64, i64, i64, i64);

impl Deltas {
    fn add(&mut self, (p, i, paid, c): (i64, i64, i64, i64)) {
        self.0 += p;
        self.1 += i;
        self.2 += paid;
        self.3 += c;
    }
}

/// Adds the deltas to the balances, creating the balances that do not exist yet: one upsert
/// per 500 identities (`balance = balance + proposed` on conflict).
async fn apply_deltas(
    db: &impl ConnectionTrait,
    deltas: &BTreeMap<(&str, &str), Deltas>,
    at: chrono::NaiveDateTime,
) -> StoreResult<()> {
    use balance::Column as C;
    let mysql = db.get_database_backend() == DbBackend::MySql;
    // The value the row would have had if it were new: `VALUES(col)` on MySQL/MariaDB,
    // `excluded.col` on PostgreSQL and SQLite.
    let proposed = |c: C| -> Expr {
        if mysql {
            Expr::cust(format!("VALUES(`{}`)", c.as_str()))
        } else {
            Expr::col((Alias::new("excluded"), c))
        }
    };
    let mut on_conflict = OnConflict::columns([C::Chain, C::IdentityAddress]);
    for c in [C::Pending, C::InFlight, C::Paid, C::Credited] {
        on_conflict.value(c, Expr::col((balance::Entity, c)).add(proposed(c)));
    }
    on_conflict.update_column(C::UpdatedAt);
    let entries: Vec<_> = deltas.iter().collect();
    for chunk in entries.chunks(500) {
        let rows = chunk
            .iter()
            .map(|((chain, identity), d)| balance::ActiveModel {
                chain: Set((*chain).to_owned()),
                identity_address: Set((*identity).to_owned()),
                pending: Set(d.0),
                in_flight: Set(d.1),
                paid: Set(d.2),
                credited: Set(d.3),
                updated_at: Set(at),
            });
        balance::Entity::insert_many(rows)
            .on_conflict(on_conflict.clone())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One identity's balance (zero if it never had one).
pub async fn balance(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
) -> StoreResult<Balance> {
    Ok(
        balance::Entity::find_by_id((chain.to_owned(), identity.to_owned()))
            .one(db)
            .await?
            .map(|m| Balance {
                pending: Sats(m.pending),
                in_flight: Sats(m.in_flight),
                paid: Sats(m.paid),
                credited: Sats(m.credited),
            })
            .unwrap_or_default(),
    )
}

/// Totals of a pool for dashboards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// Everything the pool kept from matured stakes.
    pub fees_earned: Sats,
    /// Everything paid and confirmed.
    pub total_paid: Sats,
    /// Everything credited and not yet in a payment.
    pub pending_total: Sats,
    /// Everything in payments not yet confirmed.
    pub in_flight_total: Sats,
    /// Everything ever credited.
    pub credited_total: Sats,
}

/// Sums the balances and the pool's keep of `chain`.
pub async fn pool_totals(db: &impl ConnectionTrait, chain: &str) -> StoreResult<PoolTotals> {
    let backend = db.get_database_backend();
    let sums: Option<(i64, i64, i64, i64)> = balance::Entity::find()
        .select_only()
        .column_as(sum_i64(backend, "pending"), "pending")
        .column_as(sum_i64(backend, "in_flight"), "in_flight")
        .column_as(sum_i64(backend, "paid"), "paid")
        .column_as(sum_i64(backend, "credited"), "credited")
        .filter(balance::Column::Chain.eq(chain))
        .into_tuple()
        .one(db)
        .await?;
    let fees: Option<i64> = ledger_entry::Entity::find()
        .select_only()
        .column_as(sum_i64(backend, "amount"), "fees")
        .filter(ledger_entry::Column::Chain.eq(chain))
        .filter(ledger_entry::Column::Kind.eq(LedgerKind::PoolKeep.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    let (pending, in_flight, paid, credited) = sums.unwrap_or_default();
    Ok(PoolTotals {
        fees_earned: Sats(fees.unwrap_or(0)),
        total_paid: Sats(paid),
        pending_total: Sats(pending),
        in_flight_total: Sats(in_flight),
        credited_total: Sats(credited),
    })
}

/// Takes back the postings of a stake whose maturity was disconnected: its entries go, and
/// the balances they moved move back.
pub async fn reverse_stake(
    db: &impl ConnectionTrait,
    chain: &str,
    stake_id: i64,
) -> StoreResult<()> {
    let entries = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Chain.eq(chain))
        .filter(ledger_entry::Column::StakeId.eq(stake_id))
        .all(db)
        .await?;
    let mut deltas: BTreeMap<(&str, &str), Deltas> = BTreeMap::new();
    for e in &entries {
        if let Some(identity) = &e.identity_address
            && e.kind == LedgerKind::Credit.as_str()
        {
            let (dp, di, dpaid, dc) = LedgerKind::Credit.deltas(e.amount);
            deltas
                .entry((chain, identity.as_str()))
                .or_default()
                .add((-dp, -di, -dpaid, -dc));
        }
    }
    apply_deltas(db, &deltas, now()).await?;
    ledger_entry::Entity::delete_many()
        .filter(ledger_entry::Column::Chain.eq(chain))
        .filter(ledger_entry::Column::StakeId.eq(stake_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Identities with a pending balance above zero, and that balance.
pub async fn pending_balances(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Vec<(String, Sats)>> {
    Ok(balance::Entity::find()
        .filter(balance::Column::Chain.eq(chain))
        .filter(balance::Column::Pending.gt(0))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.identity_address, Sats(b.pending)))
        .collect())
}

/// [`check`] on one consistent snapshot of the books: its sums are read in a single
/// repeatable-read transaction, so a payment confirmed or a stake credited between two of its
/// reads cannot make the books look unbalanced (found by the 2,000-block run: a confirmation
/// between reading the in-flight and the paid sums counted the payment twice).
pub async fn check_snapshot(
    db: &sea_orm::DatabaseConnection,
    chain: &str,
) -> StoreResult<Result<(), String>> {
    use sea_orm::{DbBackend, IsolationLevel, TransactionTrait};
    // SQLite: a read transaction reads one snapshot already (WAL); it has no isolation levels.
    let txn = match db.get_database_backend() {
        DbBackend::Sqlite => db.begin().await?,
        _ => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), None)
                .await?
        }
    };
    let result = check(&txn, chain).await;
    txn.rollback().await?;
    result
}

/// The ledger check of architecture §4: Σ credits = Σ pending + Σ in flight (PLANNED, SUBMITTED,
/// SENT) + Σ confirmed, the balances agree with the payments, and no balance is negative.
/// `Err` says what is wrong.
pub async fn check(db: &impl ConnectionTrait, chain: &str) -> StoreResult<Result<(), String>> {
    use crate::domain::PaymentStatus as P;
    let backend = db.get_database_backend();
    let credits: Option<i64> = ledger_entry::Entity::find()
        .select_only()
        .column_as(sum_i64(backend, "amount"), "credits")
        .filter(ledger_entry::Column::Chain.eq(chain))
        .filter(ledger_entry::Column::Kind.eq(LedgerKind::Credit.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    let credits = credits.unwrap_or(0);
    let totals = pool_totals(db, chain).await?;
    let sum_of = |status: &[P]| {
        let statuses: Vec<&'static str> = status.iter().map(|s| s.as_str()).collect();
        async move {
            let v: Option<i64> = entity::payment::Entity::find()
                .select_only()
                .column_as(sum_i64(backend, "total"), "total")
                .filter(entity::payment::Column::Chain.eq(chain))
                .filter(entity::payment::Column::Status.is_in(statuses))
                .into_tuple()
                .one(db)
                .await?;
            Ok::<i64, StoreError>(v.unwrap_or(0))
        }
    };
    let in_flight = sum_of(&[P::Planned, P::Submitted, P::Sent]).await?;
    let confirmed = sum_of(&[P::Confirmed]).await?;
    let negative = balance::Entity::find()
        .filter(balance::Column::Chain.eq(chain))
        .filter(
            sea_orm::Condition::any()
                .add(balance::Column::Pending.lt(0))
                .add(balance::Column::InFlight.lt(0))
                .add(balance::Column::Paid.lt(0)),
        )
        .one(db)
        .await?;
    if let Some(b) = negative {
        return Ok(Err(format!(
            "ledger check failed: the balance of {} is negative",
            b.identity_address
        )));
    }
    if credits != totals.pending_total.0 + in_flight + confirmed {
        return Ok(Err(format!(
            "ledger check failed: credits {} ≠ pending {} + in flight {} + confirmed {}",
            Sats(credits),
            totals.pending_total,
            Sats(in_flight),
            Sats(confirmed)
        )));
    }
    if totals.in_flight_total.0 != in_flight || totals.total_paid.0 != confirmed {
        return Ok(Err(format!(
            "ledger check failed: balances say {} in flight and {} paid, payments say {} and {}",
            totals.in_flight_total,
            totals.total_paid,
            Sats(in_flight),
            Sats(confirmed)
        )));
    }
    Ok(Ok(()))
}

/// The balances of `identities` (missing ones are zero), in one statement per 500.
pub async fn balances(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
) -> StoreResult<std::collections::HashMap<String, Balance>> {
    let mut out: std::collections::HashMap<String, Balance> = identities
        .iter()
        .map(|i| (i.clone(), Balance::default()))
        .collect();
    for slice in identities.chunks(super::IN_SLICE) {
        for m in balance::Entity::find()
            .filter(balance::Column::Chain.eq(chain))
            .filter(balance::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .all(db)
            .await?
        {
            out.insert(
                m.identity_address,
                Balance {
                    pending: Sats(m.pending),
                    in_flight: Sats(m.in_flight),
                    paid: Sats(m.paid),
                    credited: Sats(m.credited),
                },
            );
        }
    }
    Ok(out)
}
