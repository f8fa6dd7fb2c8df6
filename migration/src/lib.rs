//! Database migrations of coinstaker.
//!
//! Every migration has `up` and `down`, and uses only portable schema builders so that the
//! same migration runs on SQLite, PostgreSQL and MySQL/MariaDB. Conventions:
//!
//! - money is `BIGINT` satoshis;
//! - work is `TEXT` holding a decimal u128 (it passes 2^63; SQLite has no exact wider type);
//! - timestamps are UTC without a zone: `timestamp` on PostgreSQL, text on SQLite and
//!   `DATETIME(6)` on MySQL, whose `TIMESTAMP` ends in 2038;
//! - addresses, hashes and chain names are `VARCHAR(64)` so that composite unique keys stay
//!   within MySQL's index size limit.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

mod m20261124_000001_initial;
mod m20261124_000002_stake_coinbase;
mod m20261124_000003_webhook;
mod m20261125_000004_lease_and_luck;
mod m20261204_000005_money_safety;
mod m20261205_000006_interval_boundaries;
mod m20261206_000007_utxo_keys;

/// A UTC timestamp column that does not end in 2038 on MySQL (whose `TIMESTAMP` does):
/// `DATETIME(6)` there, `timestamp` on PostgreSQL, text on SQLite. Values are always UTC.
pub(crate) fn ts(backend: DatabaseBackend, name: &'static str) -> ColumnDef {
    match backend {
        DatabaseBackend::MySql => ColumnDef::new(name)
            .custom(Alias::new("DATETIME(6)"))
            .not_null()
            .take(),
        _ => sea_orm_migration::schema::date_time(name),
    }
}

/// Creates a table unless it exists. A migration cut off half-way (the process killed) runs
/// again at the next start with part of its work already done — on PostgreSQL its transaction
/// was rolled back, but SQLite and MySQL run migrations without one (and MySQL commits each DDL
/// statement by itself) — so every step must be safe to repeat. (Forcing a transaction on
/// MySQL left one open on the migrating connection, holding metadata locks.)
pub(crate) async fn create_table_once(
    manager: &SchemaManager<'_>,
    mut stmt: TableCreateStatement,
) -> Result<(), DbErr> {
    stmt.if_not_exists();
    manager.create_table(stmt).await
}

/// Creates index `name` on `table` unless it exists (see [`create_table_once`]).
pub(crate) async fn create_index_once(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    stmt: IndexCreateStatement,
) -> Result<(), DbErr> {
    if manager.has_index(table, name).await? {
        return Ok(());
    }
    manager.create_index(stmt).await
}

/// Drops index `name` of `table` if it exists (a cut-off run repeats safely).
pub(crate) async fn drop_index_once(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
) -> Result<(), DbErr> {
    if !manager.has_index(table, name).await? {
        return Ok(());
    }
    manager
        .drop_index(Index::drop().name(name).table(table.to_owned()).to_owned())
        .await
}

/// Adds column `name` to `table` unless it exists (see [`create_table_once`]).
pub(crate) async fn add_column_once(
    manager: &SchemaManager<'_>,
    table: &'static str,
    name: &str,
    column: ColumnDef,
) -> Result<(), DbErr> {
    if manager.has_column(table, name).await? {
        return Ok(());
    }
    manager
        .alter_table(Table::alter().table(table).add_column(column).take())
        .await
}

/// The ordered list of coinstaker's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_stake_coinbase::Migration),
            Box::new(m20261124_000003_webhook::Migration),
            Box::new(m20261125_000004_lease_and_luck::Migration),
            Box::new(m20261204_000005_money_safety::Migration),
            Box::new(m20261205_000006_interval_boundaries::Migration),
            Box::new(m20261206_000007_utxo_keys::Migration),
        ]
    }
}
