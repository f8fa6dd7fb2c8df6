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

mod m20261124_000001_initial;
mod m20261124_000002_stake_coinbase;
mod m20261124_000003_webhook;

/// The ordered list of coinstaker's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_stake_coinbase::Migration),
            Box::new(m20261124_000003_webhook::Migration),
        ]
    }
}
