//! GraphQL object types. They are built from store values, never from entities.

pub mod pool;

pub use pool::{Pool, PoolConditions};
