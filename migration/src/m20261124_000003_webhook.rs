//! Webhook delivery state: per configured webhook, the cursor of the last event delivered,
//! so that a restart resumes pending deliveries, and the failure being retried.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

use crate::ts;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let b = manager.get_database_backend();
        crate::create_table_once(
            manager,
            Table::create()
                .table("webhook_state")
                .col(string_len("name", 64).primary_key())
                .col(big_integer("cursor"))
                .col(integer("attempts"))
                .col(text_null("last_error"))
                .col(big_integer("delivered"))
                .col(ts(b, "updated_at"))
                .take(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("webhook_state").to_owned())
            .await
    }
}
