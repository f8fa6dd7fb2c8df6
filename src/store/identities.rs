//! Identity versions the pool has seen, by the height they were mined at.

use entity::identity_version;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{StoreError, StoreResult, now};
use crate::domain::Height;
use crate::domain::conditions::IdentityFacts;

/// One stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityVersion {
    /// Height of the transaction holding it (`getidentity` → `blockheight`).
    pub height: Height,
    /// That transaction.
    pub txid: String,
    /// Name (without parent).
    pub name: String,
    /// What the conditions look at.
    pub facts: IdentityFacts,
}

fn from_row(m: identity_version::Model) -> StoreResult<IdentityVersion> {
    let primary: Vec<String> = serde_json::from_str(&m.primary_addresses).map_err(|e| {
        StoreError::Corrupt(format!("identity_version {} primary_addresses: {e}", m.id))
    })?;
    Ok(IdentityVersion {
        height: m.height,
        txid: m.txid,
        name: m.name,
        facts: IdentityFacts {
            address: m.identity_address,
            flags: u32::try_from(m.flags)
                .map_err(|_| StoreError::Corrupt(format!("identity_version {} flags", m.id)))?,
            timelock: m.timelock,
            primary_addresses: primary,
            minimum_signatures: u32::try_from(m.minimum_signatures).unwrap_or(u32::MAX),
            revocation_authority: m.revocation_authority,
            recovery_authority: m.recovery_authority,
            revoked_status: m.revoked,
        },
    })
}

/// Records a version (again: the same height replaces what was stored for it).
pub async fn record(
    db: &impl ConnectionTrait,
    chain: &str,
    v: &IdentityVersion,
) -> StoreResult<()> {
    record_many(db, chain, std::slice::from_ref(v)).await
}

/// Records versions, [`crate::store::IN_SLICE`] to a statement; at most one per identity and
/// height (PostgreSQL refuses a statement that would update one row twice).
pub async fn record_many(
    db: &impl ConnectionTrait,
    chain: &str,
    versions: &[IdentityVersion],
) -> StoreResult<()> {
    for slice in versions.chunks(crate::store::IN_SLICE) {
        let mut rows = Vec::with_capacity(slice.len());
        for v in slice {
            let f = &v.facts;
            rows.push(identity_version::ActiveModel {
                id: Default::default(),
                chain: Set(chain.to_owned()),
                identity_address: Set(f.address.clone()),
                height: Set(v.height),
                txid: Set(v.txid.clone()),
                name: Set(v.name.clone()),
                parent: Set(None),
                flags: Set(i64::from(f.flags)),
                timelock: Set(f.timelock),
                minimum_signatures: Set(i32::try_from(f.minimum_signatures).unwrap_or(i32::MAX)),
                primary_addresses: Set(serde_json::to_string(&f.primary_addresses)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?),
                revocation_authority: Set(f.revocation_authority.clone()),
                recovery_authority: Set(f.recovery_authority.clone()),
                revoked: Set(f.revoked_status),
                created_at: Set(now()),
            });
        }
        use identity_version::Column as C;
        identity_version::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([C::Chain, C::IdentityAddress, C::Height])
                    .update_columns([
                        C::Txid,
                        C::Name,
                        C::Flags,
                        C::Timelock,
                        C::MinimumSignatures,
                        C::PrimaryAddresses,
                        C::RevocationAuthority,
                        C::RecoveryAuthority,
                        C::Revoked,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The version in effect at `height`: the latest mined at or below it.
pub async fn at(
    db: &impl ConnectionTrait,
    chain: &str,
    identity: &str,
    height: Height,
) -> StoreResult<Option<IdentityVersion>> {
    identity_version::Entity::find()
        .filter(identity_version::Column::Chain.eq(chain))
        .filter(identity_version::Column::IdentityAddress.eq(identity))
        .filter(identity_version::Column::Height.lte(height))
        .order_by_desc(identity_version::Column::Height)
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// [`at`] of each of `identities` (absent: no version at or below `height`), one statement
/// per 500.
pub async fn at_many(
    db: &impl ConnectionTrait,
    chain: &str,
    identities: &[String],
    height: Height,
) -> StoreResult<std::collections::HashMap<String, IdentityVersion>> {
    let mut out = std::collections::HashMap::new();
    for slice in identities.chunks(super::IN_SLICE) {
        let rows = identity_version::Entity::find()
            .filter(identity_version::Column::Chain.eq(chain))
            .filter(identity_version::Column::IdentityAddress.is_in(slice.iter().cloned()))
            .filter(identity_version::Column::Height.lte(height))
            .order_by_asc(identity_version::Column::Height)
            .all(db)
            .await?;
        // Ascending: the last one of each identity stays.
        for row in rows {
            out.insert(row.identity_address.clone(), from_row(row)?);
        }
    }
    Ok(out)
}

/// The newest version of every identity of `chain`.
pub async fn latest_all(
    db: &impl ConnectionTrait,
    chain: &str,
) -> StoreResult<Vec<IdentityVersion>> {
    let rows = identity_version::Entity::find()
        .filter(identity_version::Column::Chain.eq(chain))
        .order_by_asc(identity_version::Column::IdentityAddress)
        .order_by_desc(identity_version::Column::Height)
        .all(db)
        .await?;
    let mut out: Vec<IdentityVersion> = Vec::new();
    for row in rows {
        if out
            .last()
            .is_some_and(|v| v.facts.address == row.identity_address)
        {
            continue;
        }
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// Forgets the versions mined at `height` (a disconnected block); returns their identities.
pub async fn delete_at(
    db: &impl ConnectionTrait,
    chain: &str,
    height: Height,
) -> StoreResult<Vec<String>> {
    let rows = identity_version::Entity::find()
        .filter(identity_version::Column::Chain.eq(chain))
        .filter(identity_version::Column::Height.eq(height))
        .all(db)
        .await?;
    identity_version::Entity::delete_many()
        .filter(identity_version::Column::Chain.eq(chain))
        .filter(identity_version::Column::Height.eq(height))
        .exec(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.identity_address).collect())
}
