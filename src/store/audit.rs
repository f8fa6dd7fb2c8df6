//! The admin audit log: every admin mutation, with the prefix of the token hash that made it.

use entity::admin_audit;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect};

use super::{StoreResult, now};

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The chain it concerned.
    pub chain: Option<String>,
    /// The first hex digits of the token's SHA-256 (never the token).
    pub token_prefix: String,
    /// The mutation's name.
    pub mutation: String,
    /// Its arguments as JSON.
    pub arguments: String,
    /// Where the request came from.
    pub remote_addr: Option<String>,
}

/// Records an admin action; call it in the transaction of the change it made.
pub async fn record(db: &impl ConnectionTrait, entry: &AuditEntry) -> StoreResult<()> {
    let row = admin_audit::ActiveModel {
        id: Default::default(),
        chain: Set(entry.chain.clone()),
        token_prefix: Set(entry.token_prefix.clone()),
        mutation: Set(entry.mutation.clone()),
        arguments: Set(entry.arguments.clone()),
        remote_addr: Set(entry.remote_addr.clone()),
        created_at: Set(now()),
    };
    admin_audit::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The newest `limit` entries, newest first.
pub async fn recent(
    db: &impl ConnectionTrait,
    limit: u64,
) -> StoreResult<Vec<(AuditEntry, chrono::DateTime<chrono::Utc>)>> {
    Ok(admin_audit::Entity::find()
        .order_by_desc(admin_audit::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            (
                AuditEntry {
                    chain: m.chain,
                    token_prefix: m.token_prefix,
                    mutation: m.mutation,
                    arguments: m.arguments,
                    remote_addr: m.remote_addr,
                },
                m.created_at.and_utc(),
            )
        })
        .collect())
}
