//! A subscriber's statement for a range of heights: the opening pending balance, every credit
//! and payment that moved it, and the closing balance — read from the ledger, so it reconciles
//! with the balances to the satoshi (closing = opening + credits − payments + payments
//! returned).

use std::collections::HashMap;

use entity::{ledger_entry, payment, stake};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::ledger::LedgerKind;
use super::{StoreError, StoreResult, parse_stored};
use crate::domain::{Height, PaymentStatus, Sats, Work};

/// The most lines one statement holds (a wider range is refused: ask for a narrower one).
pub const MAX_LINES: usize = 10_000;

/// What a line of a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A matured stake's share: pending += amount.
    Credit,
    /// Moved into a payment: pending −= amount.
    Payment,
    /// A payment that failed gave it back: pending += amount.
    PaymentReturned,
}

impl LineKind {
    /// The spelling in the API and the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Credit => "CREDIT",
            LineKind::Payment => "PAYMENT",
            LineKind::PaymentReturned => "PAYMENT_RETURNED",
        }
    }
}

/// One movement of the pending balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What it is.
    pub kind: LineKind,
    /// The height it was booked at (maturity, planning, failure).
    pub height: Height,
    /// When the pool booked it.
    pub at: chrono::DateTime<chrono::Utc>,
    /// How much it moved (positive; the kind says which way).
    pub amount: Sats,
    /// The pending balance after it.
    pub pending_after: Sats,
    /// Credits: the stake's height and block, the work, the share before the fee, the fee.
    pub credit: Option<CreditDetail>,
    /// Payments: the payment, as it stands now.
    pub payment: Option<PaymentDetail>,
}

/// The stake behind a credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditDetail {
    /// The stake's height.
    pub stake_height: Height,
    /// The stake's block.
    pub block_hash: String,
    /// The subscriber's work in the stake's round.
    pub work: Work,
    /// The share before the fee (credit + fee).
    pub gross: Sats,
    /// The fee taken from the share.
    pub fee: Sats,
}

/// The payment behind a payment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDetail {
    /// The payment.
    pub id: i64,
    /// Where it is now.
    pub status: PaymentStatus,
    /// Its transaction.
    pub txid: Option<String>,
    /// The height it was planned at.
    pub planned_height: Height,
    /// The height its transaction was mined at.
    pub sent_height: Option<Height>,
    /// The height it counted as confirmed at.
    pub confirmed_height: Option<Height>,
}

/// A statement of heights `from..=to` (both optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The subscriber.
    pub identity_address: String,
    /// First height, if given.
    pub from: Option<Height>,
    /// Last height, if given.
    pub to: Option<Height>,
    /// Pending before `from`.
    pub opening_pending: Sats,
    /// Pending after `to`.
    pub closing_pending: Sats,
    /// The movements in between, in the order they were booked.
    pub lines: Vec<Line>,
}

impl Statement {
    /// Σ of the lines of one kind.
    pub fn total(&self, kind: LineKind) -> Sats {
        self.lines
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.amount)
            .sum()
    }
}

fn effect(kind: LineKind, amount: i64) -> i64 {
    match kind {
        LineKind::Credit | LineKind::PaymentReturned => amount,
        LineKind::Payment => -amount,
    }
}

/// The statement of `identity` for heights `from..=to`; `Err(why)` inside when the range holds
/// more than [`MAX_LINES`] lines (the caller's mistake: a narrower range answers).
pub async fn of(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    from: Option<Height>,
    to: Option<Height>,
) -> StoreResult<Result<Statement, String>> {
    let kinds = [
        (LedgerKind::Credit, LineKind::Credit),
        (LedgerKind::PaymentPlanned, LineKind::Payment),
        (LedgerKind::PaymentFailed, LineKind::PaymentReturned),
    ];
    let mut q = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Chain.eq(chain))
        .filter(ledger_entry::Column::IdentityAddress.eq(identity))
        .filter(ledger_entry::Column::Kind.is_in(kinds.iter().map(|(k, _)| k.as_str())));
    if let Some(to) = to {
        q = q.filter(ledger_entry::Column::Height.lte(to));
    }
    let entries = q
        .order_by_asc(ledger_entry::Column::Height)
        .order_by_asc(ledger_entry::Column::Id)
        .all(db)
        .await?;
    let mut opening = 0i64;
    let mut in_range = Vec::new();
    for e in entries {
        let kind = kinds
            .iter()
            .find(|(k, _)| k.as_str() == e.kind)
            .map(|(_, l)| *l)
            .ok_or_else(|| StoreError::Corrupt(format!("ledger entry {} kind", e.id)))?;
        let height = e.height.unwrap_or(0);
        if from.is_some_and(|f| height < f) {
            opening += effect(kind, e.amount);
        } else {
            in_range.push((kind, height, e));
        }
    }
    if in_range.len() > MAX_LINES {
        return Ok(Err(format!(
            "the range holds {} lines, more than {MAX_LINES}: ask for fewer heights",
            in_range.len()
        )));
    }
    let details = Details::load(db, chain, identity, &in_range).await?;
    let mut pending = opening;
    let mut lines = Vec::with_capacity(in_range.len());
    for (kind, height, e) in in_range {
        pending += effect(kind, e.amount);
        lines.push(Line {
            kind,
            height,
            at: e.created_at.and_utc(),
            amount: Sats(e.amount),
            pending_after: Sats(pending),
            credit: e
                .stake_id
                .filter(|_| kind == LineKind::Credit)
                .and_then(|s| details.credits.get(&s).cloned()),
            payment: e.payment_id.and_then(|p| details.payments.get(&p).cloned()),
        });
    }
    Ok(Ok(Statement {
        identity_address: identity.to_owned(),
        from,
        to,
        opening_pending: Sats(opening),
        closing_pending: Sats(pending),
        lines,
    }))
}

/// The stakes and payments behind a statement's lines, read in a few queries.
struct Details {
    credits: HashMap<i64, CreditDetail>,
    payments: HashMap<i64, PaymentDetail>,
}

impl Details {
    async fn load(
        db: &impl ConnectionTrait,
        chain: &str,
        identity: &str,
        lines: &[(LineKind, Height, ledger_entry::Model)],
    ) -> StoreResult<Details> {
        let stake_ids: Vec<i64> = lines.iter().filter_map(|(_, _, e)| e.stake_id).collect();
        let payment_ids: Vec<i64> = lines.iter().filter_map(|(_, _, e)| e.payment_id).collect();
        let mut credits = HashMap::new();
        for chunk in stake_ids.chunks(500) {
            let stakes: HashMap<i64, stake::Model> = stake::Entity::find()
                .filter(stake::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?
                .into_iter()
                .map(|s| (s.id, s))
                .collect();
            let rows = entity::credit::Entity::find()
                .filter(entity::credit::Column::Chain.eq(chain))
                .filter(entity::credit::Column::IdentityAddress.eq(identity))
                .filter(entity::credit::Column::StakeId.is_in(chunk.iter().copied()))
                .all(db)
                .await?;
            for c in rows {
                let Some(s) = stakes.get(&c.stake_id) else {
                    continue;
                };
                let work = c
                    .work
                    .parse::<Work>()
                    .map_err(|_| StoreError::Corrupt(format!("credit {} work", c.id)))?;
                credits.insert(
                    c.stake_id,
                    CreditDetail {
                        stake_height: s.height,
                        block_hash: s.block_hash.clone(),
                        work,
                        gross: Sats(c.amount.saturating_add(c.fee)),
                        fee: Sats(c.fee),
                    },
                );
            }
        }
        let mut payments = HashMap::new();
        for chunk in payment_ids.chunks(500) {
            for p in payment::Entity::find()
                .filter(payment::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                payments.insert(
                    p.id,
                    PaymentDetail {
                        id: p.id,
                        status: parse_stored(&p.status, PaymentStatus::parse, "payment status")?,
                        txid: p.txid,
                        planned_height: p.planned_height,
                        sent_height: p.sent_height,
                        confirmed_height: p.confirmed_height,
                    },
                );
            }
        }
        Ok(Details { credits, payments })
    }
}

/// The statement as RFC 4180 CSV (CRLF line ends, a header row first): amounts with 8
/// decimals, times in UTC (RFC 3339), heights as integers; an opening and a closing row frame
/// the movements.
pub fn to_csv(s: &Statement) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
        "kind",
        "height",
        "time_utc",
        "amount",
        "pending_after",
        "stake_height",
        "block_hash",
        "work",
        "gross",
        "fee",
        "payment_id",
        "payment_status",
        "planned_height",
        "sent_height",
        "confirmed_height",
        "txid",
    ])?;
    let opt = |h: Option<Height>| h.map(|h| h.to_string()).unwrap_or_default();
    w.write_record([
        "OPENING",
        &opt(s.from),
        "",
        "",
        &s.opening_pending.to_string(),
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ])?;
    for l in &s.lines {
        let c = l.credit.as_ref();
        let p = l.payment.as_ref();
        w.write_record([
            l.kind.as_str(),
            &l.height.to_string(),
            &l.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            &l.amount.to_string(),
            &l.pending_after.to_string(),
            &c.map(|c| c.stake_height.to_string()).unwrap_or_default(),
            c.map(|c| c.block_hash.as_str()).unwrap_or_default(),
            &c.map(|c| c.work.to_string()).unwrap_or_default(),
            &c.map(|c| c.gross.to_string()).unwrap_or_default(),
            &c.map(|c| c.fee.to_string()).unwrap_or_default(),
            &p.map(|p| p.id.to_string()).unwrap_or_default(),
            p.map(|p| p.status.as_str()).unwrap_or_default(),
            &opt(p.map(|p| p.planned_height)),
            &opt(p.and_then(|p| p.sent_height)),
            &opt(p.and_then(|p| p.confirmed_height)),
            p.and_then(|p| p.txid.as_deref()).unwrap_or_default(),
        ])?;
    }
    w.write_record([
        "CLOSING",
        &opt(s.to),
        "",
        "",
        &s.closing_pending.to_string(),
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ])?;
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
