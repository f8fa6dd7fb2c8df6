//! `Event`, `EventKind` and `IdentityAlertKind`: entries of the event log, as the `events`
//! query, the subscriptions and the webhooks publish them.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result};

use crate::domain;
use crate::graphql::error::store_error;
use crate::graphql::types::{Payment, Stake, Subscriber};
use crate::state::AppState;
use crate::store::{self, events::StoredEvent};

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident = $domain:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl From<domain::$domain> for $name {
            fn from(k: domain::$domain) -> Self {
                match k { $(domain::$domain::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for domain::$domain {
            fn from(k: $name) -> Self {
                match k { $($name::$variant => domain::$domain::$variant),+ }
            }
        }
    };
}

mirror_enum!(
    /// What an event reports.
    EventKind = EventKind {
        /// An identity met every condition and joined (it starts in `COOLING_DOWN`).
        SubscriberJoined,
        /// A subscriber left (or a join was undone by a reorganisation) or was banned.
        SubscriberLeft,
        /// A subscriber (or the pool identity) staked a block.
        StakeFound,
        /// A stake reached maturity and its reward was split.
        StakeMatured,
        /// A stake was orphaned or its reward taken by StakeGuard (see the stake's status).
        StakeStale,
        /// A payment's transaction was sent.
        PaymentSent,
        /// Something changed on a subscriber's identity (see `alert`).
        IdentityAlert,
    }
);

mirror_enum!(
    /// What changed on a subscriber's identity.
    IdentityAlertKind = IdentityAlertKind {
        /// The delay lock was released: the identity can be spent after its unlock delay.
        UnlockRequested,
        /// Its primary addresses changed.
        PrimaryAddressesChanged,
        /// Its revocation or recovery authority changed.
        AuthoritiesChanged,
        /// It was revoked.
        Revoked,
    }
);

/// One entry of the event log. Its `cursor` is the same as the edge cursor of the event in
/// the `events` query; either works as `after`.
#[derive(Clone)]
pub struct Event(pub Arc<StoredEvent>);

/// One entry of the event log. Its `cursor` is the same as the edge cursor of the event in
/// the `events` query; either works as `after`.
#[Object]
impl Event {
    /// The event's position in the log: resume after it with `events(after: cursor)`.
    async fn cursor(&self) -> String {
        self.0.id.to_string()
    }

    /// What happened.
    async fn kind(&self) -> EventKind {
        self.0.event.kind.into()
    }

    /// The chain's name.
    async fn chain(&self) -> &str {
        &self.0.event.chain
    }

    /// The block height it happened at, if it belongs to a block.
    async fn height(&self) -> Option<i32> {
        self.0.event.height.and_then(|h| i32::try_from(h).ok())
    }

    /// When the pool recorded it.
    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }

    /// A sentence for people.
    async fn message(&self) -> &str {
        &self.0.event.message
    }

    /// What changed, on `IDENTITY_ALERT`.
    async fn alert(&self) -> Option<IdentityAlertKind> {
        self.0.event.alert.map(Into::into)
    }

    /// The identity it is about (subscriber and stake events; `null` on payments, which name
    /// their identities in `payment.outputs`).
    async fn identity_address(&self) -> Option<&str> {
        self.0.event.identity_address.as_deref()
    }

    /// The stake's block hash, on stake events.
    async fn block_hash(&self) -> Option<&str> {
        self.0.event.block_hash.as_deref()
    }

    /// The subscriber it is about, as it is now.
    async fn subscriber(&self, ctx: &Context<'_>) -> Result<Option<Subscriber>> {
        let Some(identity) = &self.0.event.identity_address else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        Ok(
            store::subscribers::get(&state.db, &self.0.event.chain, identity)
                .await
                .map_err(store_error)?
                .map(Subscriber),
        )
    }

    /// The stake it is about, as it is now.
    async fn stake(&self, ctx: &Context<'_>) -> Result<Option<Stake>> {
        let Some(hash) = &self.0.event.block_hash else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        Ok(store::stakes::get(&state.db, &self.0.event.chain, hash)
            .await
            .map_err(store_error)?
            .map(Stake))
    }

    /// The payment it is about, as it is now.
    async fn payment(&self, ctx: &Context<'_>) -> Result<Option<Payment>> {
        let Some(id) = self.0.event.payment_id else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        Ok(store::payments::get(&state.db, id)
            .await
            .map_err(store_error)?
            .map(Payment))
    }

    /// Machine-readable detail as a JSON string (for payments: txid, outputs, total).
    async fn data(&self) -> Option<String> {
        self.0.event.data.as_ref().map(|d| d.to_string())
    }
}
