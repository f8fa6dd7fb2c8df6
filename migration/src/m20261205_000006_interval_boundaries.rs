//! Eligibility boundaries read through covering indexes.
//!
//! Every block asks which identities' eligibility intervals start or end at its height
//! (`SELECT identity_address … WHERE chain = ? AND from_height = ?`, the same for
//! `to_height`). With `ix_eligibility_from` (chain, from_height) and `ix_eligibility_to`
//! (chain, to_height), SQLite preferred to scan the covering `ix_eligibility_identity`
//! (chain, identity_address, from_height) whole: 7.7 ms a block at 50,000 subscribers, growing
//! with them. This migration replaces both with indexes that also hold `identity_address`, so
//! the query is one range of one index whatever the planner's statistics say. Their prefixes
//! still serve the unwinding statements (`from_height >= ?`, `to_height >= ?`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (old index, new index, boundary column).
const REPLACED: [(&str, &str, &str); 2] = [
    (
        "ix_eligibility_from",
        "ix_eligibility_from_identity",
        "from_height",
    ),
    (
        "ix_eligibility_to",
        "ix_eligibility_to_identity",
        "to_height",
    ),
];

const TABLE: &str = "eligibility_interval";

/// Creates `name` on (chain, `column`[, identity_address]) unless it exists.
async fn create(
    manager: &SchemaManager<'_>,
    name: &str,
    column: &'static str,
    with_identity: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(TABLE).col("chain").col(column);
    if with_identity {
        index.col("identity_address");
    }
    crate::create_index_once(manager, TABLE, name, index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The new index first: the table is never without one on its boundary column.
        for (old, new, column) in REPLACED {
            create(manager, new, column, true).await?;
            crate::drop_index_once(manager, TABLE, old).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, new, column) in REPLACED {
            create(manager, old, column, false).await?;
            crate::drop_index_once(manager, TABLE, new).await?;
        }
        Ok(())
    }
}
