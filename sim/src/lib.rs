//! A simulated verusd for coinstaker's tests, its demo and dashboard developers.
//!
//! It speaks the JSON-RPC 1.0 subset the pool uses, with replies shaped exactly like
//! verusd's (see `tests/fixtures/verusd/`), publishes ZMQ `hashblock` notifications,
//! and offers control methods (`sim_*`) to script any scenario. See the crate's README.

pub mod amount;
pub mod chain;
pub mod ids;
pub mod node;
pub mod render;
pub mod server;

pub use chain::{BlockKind, Chain, Params};
pub use server::{SimConfig, Simulator};
