//! `Statement`: a subscriber's credits and payments over a range of heights, with the pending
//! balance before and after (for subscribers and their accountants; also as CSV at
//! `GET /statements/<identity>.csv`).

use async_graphql::{Enum, Object};

use super::PaymentStatus;
use crate::graphql::scalars::{Amount, BigInt};
use crate::store::statements::{self, LineKind};

/// A subscriber's statement: what moved its pending balance between two heights.
pub struct Statement(pub statements::Statement);

/// What moved the pending balance.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "StatementLineKind")]
pub enum StatementLineKind {
    /// A matured stake's share, after the fee: pending grows.
    Credit,
    /// Moved into a payment: pending shrinks (it is in flight until confirmed).
    Payment,
    /// A payment that failed gave it back: pending grows.
    PaymentReturned,
}

impl From<LineKind> for StatementLineKind {
    fn from(k: LineKind) -> Self {
        match k {
            LineKind::Credit => StatementLineKind::Credit,
            LineKind::Payment => StatementLineKind::Payment,
            LineKind::PaymentReturned => StatementLineKind::PaymentReturned,
        }
    }
}

/// A subscriber's statement: what moved its pending balance between two heights.
#[Object]
impl Statement {
    /// The subscriber's i-address.
    async fn identity_address(&self) -> &str {
        &self.0.identity_address
    }

    /// The first height covered (`null`: from the beginning).
    async fn from_height(&self) -> Option<i64> {
        self.0.from
    }

    /// The last height covered (`null`: up to now).
    async fn to_height(&self) -> Option<i64> {
        self.0.to
    }

    /// The pending balance before `fromHeight`.
    async fn opening_pending(&self) -> Amount {
        Amount(self.0.opening_pending)
    }

    /// The pending balance after `toHeight`: opening + credits − payments + returned.
    async fn closing_pending(&self) -> Amount {
        Amount(self.0.closing_pending)
    }

    /// Σ credits in the range.
    async fn credited(&self) -> Amount {
        Amount(self.0.total(LineKind::Credit))
    }

    /// Σ moved into payments in the range.
    async fn paid_out(&self) -> Amount {
        Amount(self.0.total(LineKind::Payment))
    }

    /// Σ given back by failed payments in the range.
    async fn returned(&self) -> Amount {
        Amount(self.0.total(LineKind::PaymentReturned))
    }

    /// Every movement, in the order the pool booked it (at most 10,000: ask for a narrower
    /// range beyond).
    async fn lines(&self) -> Vec<StatementLine<'_>> {
        self.0.lines.iter().map(StatementLine).collect()
    }
}

/// One movement of a subscriber's pending balance.
pub struct StatementLine<'a>(&'a statements::Line);

/// One movement of a subscriber's pending balance.
#[Object]
impl StatementLine<'_> {
    /// What it is.
    async fn kind(&self) -> StatementLineKind {
        self.0.kind.into()
    }

    /// The height it was booked at: the stake's maturity, the payment's planning, or its
    /// failure.
    async fn height(&self) -> i64 {
        self.0.height
    }

    /// When the pool booked it (UTC).
    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.at
    }

    /// How much it moved (the kind says which way).
    async fn amount(&self) -> Amount {
        Amount(self.0.amount)
    }

    /// The pending balance after it.
    async fn pending_after(&self) -> Amount {
        Amount(self.0.pending_after)
    }

    /// Credits: the stake's height.
    async fn stake_height(&self) -> Option<i64> {
        self.0.credit.as_ref().map(|c| c.stake_height)
    }

    /// Credits: the stake's block.
    async fn block_hash(&self) -> Option<&str> {
        self.0.credit.as_ref().map(|c| c.block_hash.as_str())
    }

    /// Credits: the subscriber's work in the stake's round.
    async fn work(&self) -> Option<BigInt> {
        self.0.credit.as_ref().map(|c| BigInt(c.work))
    }

    /// Credits: the share before the fee.
    async fn gross(&self) -> Option<Amount> {
        self.0.credit.as_ref().map(|c| Amount(c.gross))
    }

    /// Credits: the fee taken from the share.
    async fn fee(&self) -> Option<Amount> {
        self.0.credit.as_ref().map(|c| Amount(c.fee))
    }

    /// Payments: the payment's id.
    async fn payment_id(&self) -> Option<async_graphql::ID> {
        self.0
            .payment
            .as_ref()
            .map(|p| async_graphql::ID(p.id.to_string()))
    }

    /// Payments: where the payment is now.
    async fn payment_status(&self) -> Option<PaymentStatus> {
        self.0.payment.as_ref().map(|p| p.status.into())
    }

    /// Payments: the height it was planned at.
    async fn planned_height(&self) -> Option<i64> {
        self.0.payment.as_ref().map(|p| p.planned_height)
    }

    /// Payments: the height its transaction was mined at.
    async fn sent_height(&self) -> Option<i64> {
        self.0.payment.as_ref().and_then(|p| p.sent_height)
    }

    /// Payments: the height it counted as confirmed at.
    async fn confirmed_height(&self) -> Option<i64> {
        self.0.payment.as_ref().and_then(|p| p.confirmed_height)
    }

    /// Payments: its transaction.
    async fn txid(&self) -> Option<&str> {
        self.0.payment.as_ref().and_then(|p| p.txid.as_deref())
    }
}
