//! Read-only checks of an identity against the pool's conditions: the one builder of the
//! conditions context that both the registry's evaluation of a block and the API's
//! `checkIdentity` use, the check itself, and the alerts an identity's owner must hear of.

use std::collections::HashSet;

use sea_orm::DatabaseConnection;

use super::RegistryCore;
use crate::actors::ActorError;
use crate::config::ChainConfig;
use crate::daemon::rpc::RpcClient;
use crate::daemon::types::IdentityReply;
use crate::domain::conditions::{self, FLAG_LOCKED, IdentityFacts};
use crate::domain::{Conditions, Height, IdentityAlertKind, SubscriberStatus};
use crate::store::{identities, settings, subscribers, utxos};

/// The outcome of checking an identity against the conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCheck {
    /// Its i-address.
    pub identity_address: String,
    /// Its fully qualified name.
    pub name: String,
    /// Meets every condition now.
    pub eligible: bool,
    /// Its status in the pool, if it has one.
    pub status: Option<SubscriberStatus>,
    /// The conditions it does not meet, in words.
    pub unmet: Vec<String>,
}

/// The conditions `facts` do not meet at `height`, in words a subscriber can act on.
/// `signable`: whether the pool can sign for an identity other than its own (it lists the
/// pool's R-address).
pub fn unmet_conditions(
    chain: &ChainConfig,
    conditions: &Conditions,
    facts: &IdentityFacts,
    height: Height,
    counted_utxos: u64,
    signable: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<String> {
    let pool_identity = chain.pool_identity.as_str();
    let pool_signable = |a: &str| a == pool_identity || signable(a);
    let ctx = conditions::Context {
        pool_address: chain.pool_primary_address.as_str(),
        pool_identity,
        conditions,
        pool_signable: &pool_signable,
        counted_utxos,
        height,
    };
    conditions::evaluate(facts, &ctx)
        .iter()
        .map(ToString::to_string)
        .collect()
}

impl RegistryCore {
    /// The check of an identity as of `at`, from a `getidentity` reply.
    pub async fn check(
        &self,
        address: &str,
        reply: &IdentityReply,
        at: Height,
    ) -> Result<IdentityCheck, ActorError> {
        check_identity(
            &self.db,
            &self.rpc,
            &self.chain,
            reply,
            at,
            Some(address)
                .filter(|a| self.tracked.contains_key(a))
                .is_some(),
        )
        .await
    }
}

/// What changed between two versions of a subscriber's identity that its owner must know.
pub(super) fn alerts(
    prev: &IdentityFacts,
    new: &IdentityFacts,
    height: Height,
) -> Vec<(IdentityAlertKind, String)> {
    let mut out = Vec::new();
    if prev.flags & FLAG_LOCKED != 0 && new.flags & FLAG_LOCKED == 0 && new.timelock >= height {
        out.push((
            IdentityAlertKind::UnlockRequested,
            format!(
                "an unlock was requested; the identity unlocks at height {}",
                new.timelock
            ),
        ));
    }
    if prev.primary_addresses != new.primary_addresses {
        out.push((
            IdentityAlertKind::PrimaryAddressesChanged,
            "the primary addresses changed".to_owned(),
        ));
    }
    if prev.revocation_authority != new.revocation_authority
        || prev.recovery_authority != new.recovery_authority
    {
        out.push((
            IdentityAlertKind::AuthoritiesChanged,
            "the revocation or recovery authority changed".to_owned(),
        ));
    }
    if !prev.revoked() && new.revoked() {
        out.push((
            IdentityAlertKind::Revoked,
            "the identity was revoked".to_owned(),
        ));
    }
    out
}

/// Checks an identity (from its `getidentity` reply as of `at`) against the conditions in
/// force at `at`, changing nothing. `tracked`: its UTXOs are in the database; otherwise they
/// are counted from the daemon's address index.
pub async fn check_identity(
    db: &DatabaseConnection,
    rpc: &RpcClient,
    chain: &ChainConfig,
    reply: &IdentityReply,
    at: Height,
    tracked: bool,
) -> Result<IdentityCheck, ActorError> {
    let facts = reply.facts();
    let settings = settings::at(db, &chain.name, at)
        .await?
        .map(|v| v.settings)
        .unwrap_or_else(|| chain.settings());
    let c = &settings.conditions;
    let counted = if c.max_utxos == 0 {
        0
    } else if tracked {
        utxos::counted(db, &chain.name, &facts.address, at - 1, c.utxo_count_min).await?
    } else {
        let snapshot = rpc
            .get_address_utxos(std::slice::from_ref(&facts.address))
            .await?;
        snapshot
            .utxos
            .iter()
            .filter(|u| u.height < at && u.satoshis >= c.utxo_count_min.0)
            .count() as u64
    };
    // Only the two authorities matter: whether the pool can sign for them now.
    let mut signable = HashSet::new();
    for authority in [&facts.revocation_authority, &facts.recovery_authority] {
        if let Some(v) = identities::at(db, &chain.name, authority, Height::MAX).await?
            && v.facts
                .primary_addresses
                .iter()
                .any(|a| a == chain.pool_primary_address.as_str())
        {
            signable.insert(authority.clone());
        }
    }
    let unmet = unmet_conditions(chain, c, &facts, at, counted, &|a| signable.contains(a));
    let status = subscribers::get(db, &chain.name, &facts.address)
        .await?
        .map(|s| s.status);
    Ok(IdentityCheck {
        identity_address: facts.address,
        name: reply.fullyqualifiedname.clone(),
        eligible: unmet.is_empty(),
        status,
        unmet,
    })
}
