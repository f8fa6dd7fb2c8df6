//! The coinbase transaction of a stake: a StakeGuard proof spends its output 0 before
//! maturity, and that spend is how the pool notices it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column_once(
            manager,
            "stake",
            "coinbase_txid",
            string_len_null("coinbase_txid", 64),
        )
        .await?;
        crate::create_index_once(
            manager,
            "stake",
            "ix_stake_coinbase",
            Index::create()
                .name("ix_stake_coinbase")
                .table("stake")
                .col("chain")
                .col("coinbase_txid")
                .take(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_stake_coinbase")
                    .table("stake")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("stake")
                    .drop_column("coinbase_txid")
                    .take(),
            )
            .await
    }
}
