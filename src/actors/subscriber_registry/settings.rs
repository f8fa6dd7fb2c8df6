//! The admins' and subscribers' decisions: bans and unbans (registry actions, applied at the
//! first height the pool has not processed and again whenever that height is connected),
//! conditions and fees (versioned by height), and a subscriber's signed minimum payout.

use std::sync::Arc;

use actix::prelude::*;

use super::{RegistryCore, SubscriberRegistry};
use crate::actors::ActorError;
use crate::domain::{
    ActionKind, Conditions, EventKind, Height, PoolSettings, Sats, SubscriberStatus,
};
use crate::store::actions::{self, Action};
use crate::store::audit::{self, AuditEntry};
use crate::store::chain as chain_store;
use crate::store::events::{self, NewEvent};
use crate::store::settings::{self, SettingsSource};
use crate::store::subscribers::{self, StatusChange, Subscriber};

impl RegistryCore {
    /// Applies one admin or subscriber action at its height (see [`crate::store::actions`]).
    /// Its events are written the first time only: applied again after a reorganisation, it
    /// restores what its subscriber was already told.
    /// `settings` are those in force at the action's height.
    pub(super) async fn apply_action(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        action: &Action,
        settings: &PoolSettings,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), ActorError> {
        let h = action.height;
        let identity = action.identity_address.as_str();
        let mut events = Vec::new();
        match action.kind {
            ActionKind::Ban => {
                let current = subscribers::get(txn, self.name(), identity).await?;
                if let Some(current) = current.filter(|c| c.status != SubscriberStatus::Banned) {
                    let (_, announce) = subscribers::set_status(
                        txn,
                        &StatusChange {
                            chain: self.name(),
                            identity_address: identity,
                            name: &current.name,
                            status: SubscriberStatus::Banned,
                            height: h,
                            reason: Some("banned by an admin"),
                            unmet: &[],
                            action: Some(action.id),
                        },
                    )
                    .await?;
                    subscribers::close_interval(txn, self.name(), identity, h).await?;
                    if announce.is_some() {
                        events.push(NewEvent {
                            identity_address: Some(identity.to_owned()),
                            height: Some(h),
                            ..NewEvent::new(
                                self.name(),
                                EventKind::SubscriberLeft,
                                format!("{} was banned by an admin", current.name),
                            )
                        });
                    }
                }
            }
            ActionKind::Unban => {
                let current = subscribers::get(txn, self.name(), identity).await?;
                if let Some(current) = current.filter(|c| c.status == SubscriberStatus::Banned) {
                    // Out of the pool either way: nothing to tell until it is back in.
                    subscribers::set_status(
                        txn,
                        &StatusChange {
                            chain: self.name(),
                            identity_address: identity,
                            name: &current.name,
                            status: SubscriberStatus::Left,
                            height: h,
                            reason: Some("unbanned by an admin"),
                            unmet: &[],
                            action: Some(action.id),
                        },
                    )
                    .await?;
                    // Back in at once if it meets the conditions.
                    self.evaluate(
                        txn,
                        identity,
                        super::blocks::At {
                            height: h,
                            settings,
                        },
                        Some(action.id),
                        &mut events,
                    )
                    .await?;
                }
            }
            ActionKind::Track => {
                self.evaluate(
                    txn,
                    identity,
                    super::blocks::At {
                        height: h,
                        settings,
                    },
                    Some(action.id),
                    &mut events,
                )
                .await?;
            }
        }
        if !action.announced {
            out.extend(events);
        }
        actions::mark_applied(txn, action.id).await?;
        Ok(())
    }

    /// Bans or unbans a subscriber from the first height the pool has not processed (an
    /// action: applied now, and again if a reorganisation takes that height away), with the
    /// audit entry in the same transaction.
    pub async fn set_banned(
        &mut self,
        identity: &str,
        banned: bool,
        audit_entry: &AuditEntry,
    ) -> Result<Subscriber, ActorError> {
        let h = self.next_height().await?;
        let current = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let txn = self.fence.begin(&self.db).await?;
        audit::record(&txn, audit_entry).await?;
        if banned != (current.status == SubscriberStatus::Banned) {
            let kind = if banned {
                ActionKind::Ban
            } else {
                ActionKind::Unban
            };
            let action = actions::record(&txn, self.name(), h, identity, kind).await?;
            let (settings, _) = self.settings_at(&txn, h).await?;
            let mut out = Vec::new();
            self.apply_action(&txn, &action, &settings, &mut out)
                .await?;
            events::append(&txn, &out).await?;
        }
        txn.commit().await?;
        self.events_written();
        subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| ActorError::NotFound(identity.to_owned()))
    }

    /// Changes the pool's conditions from the next block (everyone is evaluated again then),
    /// with the audit entry in the same transaction.
    pub async fn update_conditions(
        &mut self,
        conditions: Conditions,
        audit_entry: &AuditEntry,
    ) -> Result<Conditions, ActorError> {
        let h = self.next_height().await?;
        let current = match settings::latest(&self.db, self.name()).await? {
            Some(v) => v.settings,
            None => self.chain.settings(),
        };
        let txn = self.fence.begin(&self.db).await?;
        audit::record(&txn, audit_entry).await?;
        settings::record(
            &txn,
            self.name(),
            h,
            &PoolSettings {
                conditions: conditions.clone(),
                ..current
            },
            SettingsSource::Admin,
        )
        .await?;
        txn.commit().await?;
        log::info!(
            "chain {}: pool conditions changed from height {}: {conditions:?}",
            self.name(),
            h
        );
        Ok(conditions)
    }

    /// Changes the pool's fee from the next block, with the audit entry in the same transaction.
    pub async fn set_pool_fee(
        &mut self,
        fee: crate::domain::FeeRate,
        audit_entry: &AuditEntry,
    ) -> Result<PoolSettings, ActorError> {
        let h = self.next_height().await?;
        let current = match settings::latest(&self.db, self.name()).await? {
            Some(v) => v.settings,
            None => self.chain.settings(),
        };
        let next = PoolSettings { fee, ..current };
        let txn = self.fence.begin(&self.db).await?;
        audit::record(&txn, audit_entry).await?;
        settings::record(&txn, self.name(), h, &next, SettingsSource::Admin).await?;
        txn.commit().await?;
        if fee.ppm() == 0 {
            log::warn!(
                "chain {}: the pool fee is 0 from height {}: network fees of payments come out of nothing",
                self.name(),
                h
            );
        }
        log::info!(
            "chain {}: pool fee {} % from height {}",
            self.name(),
            fee,
            h
        );
        Ok(next)
    }

    /// Sets (or with `None` clears) a subscriber's own fee from the next block.
    pub async fn set_subscriber_fee(
        &mut self,
        identity: &str,
        fee: Option<crate::domain::FeeRate>,
        audit_entry: &AuditEntry,
    ) -> Result<Subscriber, ActorError> {
        let h = self.next_height().await?;
        let row = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let txn = self.fence.begin(&self.db).await?;
        audit::record(&txn, audit_entry).await?;
        settings::set_subscriber_fee(&txn, self.name(), identity, h, fee).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Sets a subscriber's own minimum payout, authorised by its signature over
    /// `coinstaker:setMinPayout:<chain id>:<identity>:<amount, 8 decimals>:<height>` with the
    /// height within 10 blocks of the tip. The message names the chain (a signature for
    /// another chain does not verify here), and each height is used once: a signature is
    /// accepted only with a height above the last one accepted, so it cannot be replayed.
    pub async fn set_min_payout(
        &mut self,
        identity: &str,
        amount: Sats,
        height: Height,
        signature: &str,
    ) -> Result<Subscriber, ActorError> {
        let tip = i64::try_from(self.rpc.get_block_count().await?).unwrap_or(i64::MAX);
        if (height - tip).abs() > 10 {
            return Err(ActorError::Invalid(format!(
                "height {height} is more than 10 blocks from the tip {tip}: sign again with a current height"
            )));
        }
        let row = subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| {
                ActorError::NotFound(format!("{identity} is not a subscriber of {}", self.name()))
            })?;
        let chain_id = chain_store::get_chain(&self.db, self.name())
            .await?
            .and_then(|c| c.chain_id)
            .ok_or_else(|| {
                ActorError::Unavailable(format!(
                    "the pool does not know the chain id of {} yet (its daemon has not answered); try again shortly",
                    self.name()
                ))
            })?;
        let message = format!("coinstaker:setMinPayout:{chain_id}:{identity}:{amount}:{height}");
        if !self
            .rpc
            .verify_message(identity, signature, &message)
            .await?
        {
            return Err(ActorError::Invalid(format!(
                "the signature does not verify: sign exactly \"{message}\" with the identity"
            )));
        }
        if !subscribers::set_min_payout(&self.db, self.name(), identity, amount, height).await? {
            return Err(ActorError::Invalid(format!(
                "a signature with height {height} or a later one was used already: sign again with the current height"
            )));
        }
        log::info!(
            "chain {}: {} set its minimum payout to {amount}",
            self.name(),
            row.name
        );
        subscribers::get(&self.db, self.name(), identity)
            .await?
            .ok_or_else(|| ActorError::NotFound(identity.to_owned()))
    }
}

/// Ban or unban a subscriber (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetBanned {
    /// The identity's i-address.
    pub identity: String,
    /// Ban or unban.
    pub banned: bool,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetBanned> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetBanned, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_banned(&msg.identity, msg.banned, &msg.audit)
                .await
        })
    }
}

/// Change the pool's conditions from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Conditions, ActorError>")]
pub struct UpdateConditions {
    /// The new conditions.
    pub conditions: Conditions,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<UpdateConditions> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Conditions, ActorError>>;
    fn handle(&mut self, msg: UpdateConditions, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .update_conditions(msg.conditions, &msg.audit)
                .await
        })
    }
}

/// Change the pool's fee from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PoolSettings, ActorError>")]
pub struct SetPoolFee {
    /// The new fee.
    pub fee: crate::domain::FeeRate,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetPoolFee> for SubscriberRegistry {
    type Result = ResponseFuture<Result<PoolSettings, ActorError>>;
    fn handle(&mut self, msg: SetPoolFee, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.lock().await.set_pool_fee(msg.fee, &msg.audit).await })
    }
}

/// Set or clear a subscriber's own fee from the next block (admin).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetSubscriberFee {
    /// The identity's i-address.
    pub identity: String,
    /// The fee; `None`: the pool's again.
    pub fee: Option<crate::domain::FeeRate>,
    /// The audit entry to write with the change.
    pub audit: AuditEntry,
}

impl Handler<SetSubscriberFee> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetSubscriberFee, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_subscriber_fee(&msg.identity, msg.fee, &msg.audit)
                .await
        })
    }
}

/// Set a subscriber's minimum payout (signed by the identity).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Subscriber, ActorError>")]
pub struct SetMinPayout {
    /// The identity's i-address.
    pub identity: String,
    /// The new minimum.
    pub amount: Sats,
    /// The height in the signed message.
    pub height: Height,
    /// The identity's signature (`signmessage`).
    pub signature: String,
}

impl Handler<SetMinPayout> for SubscriberRegistry {
    type Result = ResponseFuture<Result<Subscriber, ActorError>>;
    fn handle(&mut self, msg: SetMinPayout, _: &mut Self::Context) -> Self::Result {
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            core.lock()
                .await
                .set_min_payout(&msg.identity, msg.amount, msg.height, &msg.signature)
                .await
        })
    }
}
