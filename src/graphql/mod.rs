//! The GraphQL API (contract: `docs/API.md`; the exported `schema.graphql` is the authority).
//!
//! GraphQL types live in `types/` and are never the database entities: resolvers read
//! through `store::` and convert. The schema is built once at start-up and shared by every
//! HTTP worker. Limits (depth, complexity, page size, body size) are checked before anything
//! runs; every error carries `extensions.code` (`limits`, `error`).

pub mod args;
pub mod auth;
pub mod error;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod responses;
pub mod scalars;
pub mod snapshot;
pub mod subscription;
pub mod types;
pub mod websocket;

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};

use crate::state::AppState;

/// The schema type served at `/graphql`.
pub type AppSchema =
    Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

fn builder()
-> SchemaBuilder<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot> {
    Schema::build(
        query::QueryRoot,
        mutation::MutationRoot,
        subscription::SubscriptionRoot,
    )
    .limit_depth(limits::MAX_DEPTH)
}

/// Builds the schema with the application state its resolvers read and the limits of its
/// configuration.
pub fn build_schema(state: AppState) -> AppSchema {
    let http = &state.config.http;
    // The cost limit is checked by the rules (with the cost in the message, and one budget
    // per batch), not by async-graphql's `limit_complexity`.
    let rules = limits::RequestRules {
        limiter: limits::costly_limiter(http.mutation_rate_per_minute),
        max_complexity: http.max_complexity,
        clients: Arc::clone(&state.clients),
    };
    let loaders = loaders::Loaders::new(&state.db);
    builder()
        .extension(rules)
        .data(loaders)
        .data(state)
        .finish()
}

/// The schema in SDL, as `coinstaker export-schema` prints it and `schema.graphql` holds it.
pub fn export_sdl() -> String {
    builder().finish().sdl()
}
