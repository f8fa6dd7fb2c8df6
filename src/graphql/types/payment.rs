//! `Payment`, `PaymentStatus` and `PaymentOutput`.

use async_graphql::{Enum, ID, Object, SimpleObject};

use crate::domain::PaymentStatus as Status;
use crate::graphql::scalars::Amount;
use crate::store;

/// Where a payment is in its state machine.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "PaymentStatus")]
pub enum PaymentStatus {
    /// Outputs fixed; the balances are in the payment.
    Planned,
    /// Handed to the daemon (operation id known).
    Submitted,
    /// Transaction id known.
    Sent,
    /// Confirmed by `payment_confirmations` blocks.
    Confirmed,
    /// Proved never to be mined; the balances are pending again.
    Failed,
}

impl From<Status> for PaymentStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Planned => PaymentStatus::Planned,
            Status::Submitted => PaymentStatus::Submitted,
            Status::Sent => PaymentStatus::Sent,
            Status::Confirmed => PaymentStatus::Confirmed,
            Status::Failed => PaymentStatus::Failed,
        }
    }
}

impl From<PaymentStatus> for Status {
    fn from(s: PaymentStatus) -> Self {
        match s {
            PaymentStatus::Planned => Status::Planned,
            PaymentStatus::Submitted => Status::Submitted,
            PaymentStatus::Sent => Status::Sent,
            PaymentStatus::Confirmed => Status::Confirmed,
            PaymentStatus::Failed => Status::Failed,
        }
    }
}

/// One output of a payment.
#[derive(SimpleObject, Debug, Clone)]
pub struct PaymentOutput {
    /// The identity paid.
    pub identity_address: String,
    /// The amount.
    pub amount: Amount,
}

/// One batch payment (`sendcurrency` from the pool identity).
#[derive(Clone)]
pub struct Payment(pub store::payments::Payment);

/// One batch payment (`sendcurrency` from the pool identity).
#[Object]
impl Payment {
    /// Its id (negative in a dry run: not stored).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where it is.
    async fn status(&self) -> PaymentStatus {
        self.0.status.into()
    }

    /// The transaction, once known.
    async fn txid(&self) -> Option<&str> {
        self.0.txid.as_deref()
    }

    /// Σ outputs; the network fee is paid by the pool identity and not included.
    async fn total(&self) -> Amount {
        Amount(self.0.total)
    }

    /// The outputs.
    async fn outputs(&self) -> Vec<PaymentOutput> {
        self.0
            .outputs
            .iter()
            .map(|(a, s)| PaymentOutput {
                identity_address: a.clone(),
                amount: Amount(*s),
            })
            .collect()
    }

    /// When it was planned.
    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }

    /// The height its transaction was mined at.
    async fn sent_height(&self) -> Option<i32> {
        self.0.sent_height.and_then(|h| i32::try_from(h).ok())
    }

    /// Why it failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}
