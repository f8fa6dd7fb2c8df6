//! The initial schema: chain progress, subscribers and their history, identity versions,
//! UTXOs, stakes, credits, balances and the ledger, payments, the event log, versioned pool
//! settings, pool statistics and the admin audit log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Short text keys: chain names, addresses, hashes, txids, statuses.
const KEY: u32 = 64;

use crate::ts;

fn ts_null(backend: DatabaseBackend, name: &'static str) -> ColumnDef {
    ts(backend, name).null().take()
}

fn key(name: &'static str) -> ColumnDef {
    string_len(name, KEY)
}

fn key_null(name: &'static str) -> ColumnDef {
    string_len_null(name, KEY)
}

/// Every table, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "chain_info",
    "block",
    "actor_cursor",
    "subscriber",
    "subscriber_status",
    "eligibility_interval",
    "identity_version",
    "subscriber_utxo",
    "stake",
    "credit",
    "balance",
    "ledger_entry",
    "payment",
    "payment_output",
    "event",
    "counter",
    "pool_settings",
    "subscriber_fee",
    "payout_state",
    "pool_stats",
    "admin_audit",
];

fn index(
    name: &str,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> (&'static str, String, IndexCreateStatement) {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(*col);
    }
    if unique {
        stmt.unique();
    }
    (table, name.to_owned(), stmt.take())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let b = manager.get_database_backend();
        let tables = vec![
            // One row per configured chain: what the pool learned about it once.
            Table::create()
                .table("chain_info")
                .col(key("chain").primary_key())
                .col(key_null("chain_id"))
                .col(big_integer_null("start_height"))
                .col(ts(b, "created_at"))
                .take(),
            // Every block the ChainWatcher has connected and not disconnected.
            Table::create()
                .table("block")
                .col(key("chain"))
                .col(big_integer("height"))
                .col(key("hash"))
                .col(key("prev_hash"))
                .col(ts(b, "processed_at"))
                .primary_key(Index::create().col("chain").col("height"))
                .take(),
            // The last (height, hash) each chain actor committed: makes block handling idempotent.
            Table::create()
                .table("actor_cursor")
                .col(key("chain"))
                .col(string_len("actor", 32))
                .col(big_integer("height"))
                .col(key("hash"))
                .col(ts(b, "updated_at"))
                .primary_key(Index::create().col("chain").col("actor"))
                .take(),
            Table::create()
                .table("subscriber")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(text("name"))
                .col(string_len("status", 16))
                .col(big_integer_null("joined_height"))
                .col(big_integer_null("left_height"))
                .col(big_integer_null("min_payout"))
                .col(text_null("unmet"))
                .col(ts(b, "created_at"))
                .col(ts(b, "updated_at"))
                .take(),
            // Every status change, with the height it applies from and why.
            Table::create()
                .table("subscriber_status")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(big_integer("height"))
                .col(string_len("status", 16))
                .col(text_null("reason"))
                .col(ts(b, "created_at"))
                .take(),
            // Heights [from_height, to_height) in which a subscriber earns work; open while to_height is NULL.
            Table::create()
                .table("eligibility_interval")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(big_integer("from_height"))
                .col(big_integer_null("to_height"))
                .take(),
            // Each version of an identity the pool has seen, by the height it was mined at.
            Table::create()
                .table("identity_version")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(big_integer("height"))
                .col(key("txid"))
                .col(text("name"))
                .col(key_null("parent"))
                .col(big_integer("flags"))
                .col(big_integer("timelock"))
                .col(integer("minimum_signatures"))
                .col(text("primary_addresses"))
                .col(key("revocation_authority"))
                .col(key("recovery_authority"))
                .col(boolean("revoked"))
                .col(ts(b, "created_at"))
                .take(),
            // UTXOs of identities that list the pool's R-address: mined at `height`, spent at `spent_height`.
            Table::create()
                .table("subscriber_utxo")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(key("txid"))
                .col(integer("vout"))
                .col(big_integer("amount"))
                .col(big_integer("height"))
                .col(big_integer_null("spent_height"))
                .col(key_null("spent_txid"))
                .col(boolean("from_pool"))
                .take(),
            Table::create()
                .table("stake")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("block_hash"))
                .col(big_integer("height"))
                .col(key("found_by"))
                .col(big_integer("reward"))
                .col(string_len("status", 16))
                .col(boolean("solo"))
                .col(boolean("pool_own"))
                .col(big_integer("round_start_height"))
                .col(text("total_work"))
                .col(big_integer_null("pool_keep"))
                .col(key_null("source_txid"))
                .col(integer_null("source_vout"))
                .col(big_integer_null("source_amount"))
                .col(big_integer_null("status_height"))
                .col(text_null("note"))
                .col(ts(b, "created_at"))
                .col(ts(b, "updated_at"))
                .take(),
            // What one subscriber earned from one matured stake, with the work behind it.
            Table::create()
                .table("credit")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(big_integer("stake_id"))
                .col(key("identity_address"))
                .col(big_integer("height"))
                .col(text("work"))
                .col(big_integer("amount"))
                .col(big_integer("fee"))
                .col(big_integer("fee_ppm"))
                .col(ts(b, "created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_credit_stake")
                        .from("credit", "stake_id")
                        .to("stake", "id")
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .take(),
            // Current balance per identity; the ledger below is its journal.
            Table::create()
                .table("balance")
                .col(key("chain"))
                .col(key("identity_address"))
                .col(big_integer("pending"))
                .col(big_integer("in_flight"))
                .col(big_integer("paid"))
                .col(big_integer("credited"))
                .col(ts(b, "updated_at"))
                .primary_key(Index::create().col("chain").col("identity_address"))
                .take(),
            // Every movement of money; identity_address NULL is the pool's own account.
            Table::create()
                .table("ledger_entry")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key_null("identity_address"))
                .col(string_len("kind", 24))
                .col(big_integer("amount"))
                .col(big_integer_null("stake_id"))
                .col(big_integer_null("payment_id"))
                .col(big_integer_null("height"))
                .col(ts(b, "created_at"))
                .take(),
            Table::create()
                .table("payment")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(string_len("status", 16))
                .col(key_null("opid"))
                .col(key_null("txid"))
                .col(big_integer("total"))
                .col(big_integer("planned_height"))
                .col(big_integer_null("sent_height"))
                .col(big_integer_null("confirmed_height"))
                .col(big_integer_null("expiry_height"))
                .col(text_null("error"))
                .col(ts(b, "created_at"))
                .col(ts(b, "updated_at"))
                .take(),
            Table::create()
                .table("payment_output")
                .col(big_pk_auto("id"))
                .col(big_integer("payment_id"))
                .col(key("identity_address"))
                .col(big_integer("amount"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_payment_output_payment")
                        .from("payment_output", "payment_id")
                        .to("payment", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
            // The event log. `id` is handed out from the `event` counter inside the writing
            // transaction, so ids follow commit order (architecture §5); it is not auto-increment.
            Table::create()
                .table("event")
                .col(big_integer("id").primary_key())
                .col(key("chain"))
                .col(string_len("kind", 24))
                .col(string_len_null("alert", 32))
                .col(big_integer_null("height"))
                .col(key_null("identity_address"))
                .col(key_null("block_hash"))
                .col(big_integer_null("payment_id"))
                .col(text("message"))
                .col(text_null("data"))
                .col(ts(b, "created_at"))
                .take(),
            Table::create()
                .table("counter")
                .col(string_len("name", 32).primary_key())
                .col(big_integer("value"))
                .take(),
            // Pool fee, minimum payout and conditions, each version in force from `from_height`.
            Table::create()
                .table("pool_settings")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(big_integer("from_height"))
                .col(big_integer("fee_ppm"))
                .col(big_integer("min_payout"))
                .col(big_integer("min_unlock_delay"))
                .col(boolean("require_separate_revoke_recover"))
                .col(integer("max_primary_addresses"))
                .col(integer("max_utxos"))
                .col(big_integer("utxo_count_min"))
                .col(string_len("source", 16))
                .col(ts(b, "created_at"))
                .take(),
            // A subscriber's own fee from `from_height`; fee_ppm NULL = the pool's fee again.
            Table::create()
                .table("subscriber_fee")
                .col(big_pk_auto("id"))
                .col(key("chain"))
                .col(key("identity_address"))
                .col(big_integer("from_height"))
                .col(big_integer_null("fee_ppm"))
                .col(ts(b, "created_at"))
                .take(),
            Table::create()
                .table("payout_state")
                .col(key("chain").primary_key())
                .col(boolean("paused"))
                .col(text_null("paused_reason"))
                .col(ts_null(b, "last_cycle_at"))
                .col(ts(b, "updated_at"))
                .take(),
            Table::create()
                .table("pool_stats")
                .col(key("chain"))
                .col(big_integer("height"))
                .col(big_integer("staking_supply"))
                .col(integer("active_subscribers"))
                .col(big_integer_null("network_staking_supply"))
                .primary_key(Index::create().col("chain").col("height"))
                .take(),
            Table::create()
                .table("admin_audit")
                .col(big_pk_auto("id"))
                .col(key_null("chain"))
                .col(string_len("token_prefix", 16))
                .col(string_len("mutation", 64))
                .col(text("arguments"))
                .col(key_null("remote_addr"))
                .col(ts(b, "created_at"))
                .take(),
        ];
        for table in tables {
            crate::create_table_once(manager, table).await?;
        }

        let indexes = [
            index(
                "ux_subscriber",
                "subscriber",
                &["chain", "identity_address"],
                true,
            ),
            index(
                "ix_subscriber_status",
                "subscriber",
                &["chain", "status"],
                false,
            ),
            index(
                "ix_subscriber_status_history",
                "subscriber_status",
                &["chain", "identity_address", "height"],
                false,
            ),
            index(
                "ix_eligibility_identity",
                "eligibility_interval",
                &["chain", "identity_address", "from_height"],
                false,
            ),
            index(
                "ix_eligibility_from",
                "eligibility_interval",
                &["chain", "from_height"],
                false,
            ),
            index(
                "ux_identity_version",
                "identity_version",
                &["chain", "identity_address", "height"],
                true,
            ),
            index(
                "ux_subscriber_utxo",
                "subscriber_utxo",
                &["chain", "txid", "vout"],
                true,
            ),
            index(
                "ix_utxo_identity",
                "subscriber_utxo",
                &["chain", "identity_address"],
                false,
            ),
            index(
                "ix_utxo_height",
                "subscriber_utxo",
                &["chain", "height"],
                false,
            ),
            index(
                "ix_utxo_spent",
                "subscriber_utxo",
                &["chain", "spent_height"],
                false,
            ),
            index("ux_stake", "stake", &["chain", "block_hash"], true),
            index("ix_stake_height", "stake", &["chain", "height"], false),
            index("ix_stake_status", "stake", &["chain", "status"], false),
            index(
                "ux_credit",
                "credit",
                &["stake_id", "identity_address"],
                true,
            ),
            index(
                "ix_credit_identity",
                "credit",
                &["chain", "identity_address", "height"],
                false,
            ),
            index(
                "ix_ledger_identity",
                "ledger_entry",
                &["chain", "identity_address"],
                false,
            ),
            index("ix_payment_status", "payment", &["chain", "status"], false),
            index("ux_payment_txid", "payment", &["chain", "txid"], true),
            index(
                "ux_payment_output",
                "payment_output",
                &["payment_id", "identity_address"],
                true,
            ),
            index(
                "ix_payment_output_identity",
                "payment_output",
                &["identity_address"],
                false,
            ),
            index("ix_event_chain", "event", &["chain", "id"], false),
            index(
                "ux_pool_settings",
                "pool_settings",
                &["chain", "from_height"],
                true,
            ),
            index(
                "ux_subscriber_fee",
                "subscriber_fee",
                &["chain", "identity_address", "from_height"],
                true,
            ),
        ];
        for (table, name, stmt) in indexes {
            crate::create_index_once(manager, table, &name, stmt).await?;
        }
        // The event id counter must exist before the first event-writing transaction:
        // updating this row is what serialises event ids in commit order.
        let db = manager.get_connection();
        let existing = db
            .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                manager.get_database_backend(),
                "SELECT value FROM counter WHERE name = 'event'",
            ))
            .await?;
        if existing.is_none() {
            db.execute_unprepared("INSERT INTO counter (name, value) VALUES ('event', 0)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(*table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
