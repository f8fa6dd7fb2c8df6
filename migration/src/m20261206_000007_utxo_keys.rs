//! Integer keys for `subscriber_utxo`'s two random-order indexes.
//!
//! Every block inserts its new outputs into `ux_subscriber_utxo` (chain, txid, vout) and
//! `ix_utxo_identity` (chain, identity_address). Both are ordered by random text (a hash, a
//! base58 address), so 200 outputs a block touch about 200 pages of each, and SQLite writes
//! each touched page to its log whole: on 2 cores these two indexes were half of a block's
//! time at 10,000 subscribers (BENCHMARKS.md, tenth and eleventh rounds).
//!
//! This migration adds `txid_key` and `identity_key`, 64-bit keys of the texts
//! ([`entity::subscriber_utxo::text_key`]), fills them for the stored rows, indexes them and
//! drops the two text indexes. Two texts may share a key, so the keys' indexes are not unique
//! and every statement compares the text as well; the pool's registry is the one writer of
//! the table and checks an output is new before it inserts it (`store::utxos::insert`).

use entity::subscriber_utxo::text_key;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, TryGetable};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "subscriber_utxo";

/// Rows keyed per statement while filling the keys.
const FILL_SLICE: u64 = 500;

/// (new index, its column after `chain`). With `chain` first, SQLite prefers them to
/// `ix_utxo_height` and `ix_utxo_spent` (chain, …) for `chain = ? AND key IN (…)`; on `key`
/// alone it chose to read every output of the chain through one of those.
const KEYS: [(&str, &str); 2] = [
    ("ix_utxo_txid_key", "txid_key"),
    ("ix_utxo_identity_key", "identity_key"),
];

/// Sets both keys of every stored row, `FILL_SLICE` rows a statement, in the order of `id`.
/// Repeating it (a cut-off run) computes the same keys again.
async fn fill_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after = 0i64;
    loop {
        let select = Query::select()
            .columns(["id", "txid", "identity_address"])
            .from(TABLE)
            .and_where(Expr::col("id").gt(after))
            .order_by("id", Order::Asc)
            .limit(FILL_SLICE)
            .to_owned();
        let rows = db.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = i64::try_get_by(last, "id").map_err(|e| DbErr::Custom(format!("{e:?}")))?;
        let mut txid_case = CaseStatement::new();
        let mut identity_case = CaseStatement::new();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = |column: &str| {
                String::try_get_by(row, column).map_err(|e| DbErr::Custom(format!("{e:?}")))
            };
            let id = i64::try_get_by(row, "id").map_err(|e| DbErr::Custom(format!("{e:?}")))?;
            txid_case = txid_case.case(Expr::col("id").eq(id), text_key(&read("txid")?));
            identity_case =
                identity_case.case(Expr::col("id").eq(id), text_key(&read("identity_address")?));
            ids.push(id);
        }
        let update = Query::update()
            .table(TABLE)
            .value("txid_key", txid_case.finally(Expr::col("txid_key")))
            .value(
                "identity_key",
                identity_case.finally(Expr::col("identity_key")),
            )
            .and_where(Expr::col("id").is_in(ids))
            .to_owned();
        db.execute(&update).await?;
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, column) in KEYS {
            crate::add_column_once(
                manager,
                TABLE,
                column,
                big_integer(column).default(0).take(),
            )
            .await?;
        }
        fill_keys(manager).await?;
        // The new indexes before the old ones go: the table is never without one.
        for (name, column) in KEYS {
            crate::create_index_once(
                manager,
                TABLE,
                name,
                Index::create()
                    .name(name)
                    .table(TABLE)
                    .col("chain")
                    .col(column)
                    .take(),
            )
            .await?;
        }
        crate::drop_index_once(manager, TABLE, "ux_subscriber_utxo").await?;
        crate::drop_index_once(manager, TABLE, "ix_utxo_identity").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_index_once(
            manager,
            TABLE,
            "ux_subscriber_utxo",
            Index::create()
                .name("ux_subscriber_utxo")
                .table(TABLE)
                .col("chain")
                .col("txid")
                .col("vout")
                .unique()
                .take(),
        )
        .await?;
        crate::create_index_once(
            manager,
            TABLE,
            "ix_utxo_identity",
            Index::create()
                .name("ix_utxo_identity")
                .table(TABLE)
                .col("chain")
                .col("identity_address")
                .take(),
        )
        .await?;
        for (name, column) in KEYS {
            crate::drop_index_once(manager, TABLE, name).await?;
            if manager.has_column(TABLE, column).await? {
                manager
                    .alter_table(Table::alter().table(TABLE).drop_column(column).take())
                    .await?;
            }
        }
        Ok(())
    }
}
