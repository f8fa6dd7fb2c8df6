//! Money safety under what a real verusd and a real operator do:
//!
//! - `registry_action`: admin and subscriber actions on one identity (ban, unban, start
//!   following it) at the first height the pool had not processed. They are the operator's
//!   decisions, not chain facts: a reorganisation undoes their effect with the blocks and the
//!   registry applies them again when it connects their height.
//! - `subscriber_status.action_id`: the action a status change came from (none: the chain).
//! - `chain_info.unwind_from`: the highest block the pool held when the reorganisation under way
//!   started, so its depth limit holds across retries and restarts.
//! - `payout_state.check_failure`: the failed ledger check that holds payouts (lifted by the
//!   next check that passes), apart from an admin's pause.
//! - `subscriber.min_payout_height`: the height of the last signed `setMinPayout` accepted, so
//!   a signature is used once.
//! - `subscriber.announced`: whether the event log last told clients the identity is in the
//!   pool (its last `SUBSCRIBER_JOINED` or `SUBSCRIBER_LEFT`), so those events alternate
//!   whatever reorganisations and actions do in between.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let b = manager.get_database_backend();
        crate::create_table_once(
            manager,
            Table::create()
                .table("registry_action")
                .col(big_pk_auto("id"))
                .col(string_len("chain", 64))
                .col(big_integer("height"))
                .col(string_len("identity_address", 64))
                // ban, unban, track
                .col(string_len("kind", 16))
                // Its effect is in the tables (false again when its height is disconnected).
                .col(boolean("applied").default(false))
                // Its events were written once; applying it again writes none.
                .col(boolean("announced").default(false))
                .col(crate::ts(b, "created_at"))
                .take(),
        )
        .await?;
        crate::create_index_once(
            manager,
            "registry_action",
            "ix_registry_action_height",
            Index::create()
                .name("ix_registry_action_height")
                .table("registry_action")
                .col("chain")
                .col("height")
                .take(),
        )
        .await?;
        crate::add_column_once(
            manager,
            "subscriber_status",
            "action_id",
            big_integer_null("action_id").take(),
        )
        .await?;
        crate::add_column_once(
            manager,
            "chain_info",
            "unwind_from",
            big_integer_null("unwind_from").take(),
        )
        .await?;
        crate::add_column_once(
            manager,
            "payout_state",
            "check_failure",
            text_null("check_failure").take(),
        )
        .await?;
        crate::add_column_once(
            manager,
            "subscriber",
            "min_payout_height",
            big_integer_null("min_payout_height").take(),
        )
        .await?;
        if !manager.has_column("subscriber", "announced").await? {
            crate::add_column_once(
                manager,
                "subscriber",
                "announced",
                boolean("announced").default(false).take(),
            )
            .await?;
            // Those in the pool were told so when they joined.
            manager
                .exec_stmt(
                    Query::update()
                        .table("subscriber")
                        .value("announced", true)
                        .and_where(Expr::col("status").is_in(["COOLING_DOWN", "ACTIVE"]))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            ("subscriber", "announced"),
            ("subscriber", "min_payout_height"),
            ("payout_state", "check_failure"),
            ("chain_info", "unwind_from"),
            ("subscriber_status", "action_id"),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).take())
                .await?;
        }
        manager
            .drop_table(Table::drop().table("registry_action").to_owned())
            .await
    }
}
