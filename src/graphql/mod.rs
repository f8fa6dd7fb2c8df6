//! The GraphQL API (contract: `docs/API.md`; the exported `schema.graphql` is the authority).
//!
//! GraphQL types live in `types/` and are never the database entities: resolvers read
//! through `store::` and convert. The schema is built once at start-up and shared by every
//! HTTP worker.

pub mod args;
pub mod auth;
pub mod error;
pub mod mutation;
pub mod query;
pub mod scalars;
pub mod types;

use async_graphql::{EmptySubscription, Schema};

use crate::state::AppState;

/// The schema type served at `/graphql`.
pub type AppSchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

fn builder()
-> async_graphql::SchemaBuilder<query::QueryRoot, mutation::MutationRoot, EmptySubscription> {
    Schema::build(query::QueryRoot, mutation::MutationRoot, EmptySubscription)
}

/// Builds the schema with the application state its resolvers read.
pub fn build_schema(state: AppState) -> AppSchema {
    builder().data(state).finish()
}

/// The schema in SDL, as `coinstaker export-schema` prints it and `schema.graphql` holds it.
pub fn export_sdl() -> String {
    builder().finish().sdl()
}
