//! More than one instance on one database: `leader_lease` says which instance follows and
//! pays each chain. And the luck metric: `pool_stats.proof_of_stake` says whether a block was
//! staked (by anyone), so expected stakes can be summed over the staked blocks only. And an
//! index on `eligibility_interval.to_height`: every block asks which intervals end at its
//! height, which scanned the table (a cost growing with the number of subscribers).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_table_once(
            manager,
            Table::create()
                .table("leader_lease")
                .col(string_len("chain", 64).primary_key())
                // Empty: released, free to take at once.
                .col(string_len("holder", 128))
                .col(string_len("holder_url", 255))
                // Bumped by every takeover: a write fenced with an older epoch fails.
                .col(big_integer("epoch"))
                // Bumped by every renewal: followers time its silence on their own clock.
                .col(big_integer("heartbeat"))
                // Bumped by every fenced write (so the fence's UPDATE always changes the
                // row, which MySQL needs to count it).
                .col(big_integer("writes"))
                .take(),
        )
        .await?;
        crate::add_column_once(
            manager,
            "pool_stats",
            "proof_of_stake",
            boolean("proof_of_stake").default(false).take(),
        )
        .await?;
        crate::create_index_once(
            manager,
            "eligibility_interval",
            "ix_eligibility_to",
            Index::create()
                .name("ix_eligibility_to")
                .table("eligibility_interval")
                .col("chain")
                .col("to_height")
                .take(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_eligibility_to")
                    .table("eligibility_interval")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("pool_stats")
                    .drop_column("proof_of_stake")
                    .take(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("leader_lease").to_owned())
            .await
    }
}
