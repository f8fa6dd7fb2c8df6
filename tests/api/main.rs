//! coinstaker's integration tests: one binary, real sockets, a fresh database per test.
//! Set `TEST_DATABASE_URL` to run every database-touching test on PostgreSQL or MySQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod abuse;
mod cli;
mod cluster;
mod config;
mod daemon;
mod dashboard;
mod faults;
mod fixtures;
mod hardening;
mod http;
mod live;
mod migrations;
mod money;
mod payments;
mod registry;
mod schema;
mod stakes;
mod store;
