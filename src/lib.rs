//! coinstaker: the back-end of a non-custodial Verus staking pool.
//!
//! The binary is a thin shell over this library so that tests can build the whole
//! application (`startup::Application`) on port 0.

pub mod actors;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod demo;
pub mod domain;
pub mod fault;
pub mod gate;
pub mod graphql;
pub mod health;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod net;
pub mod priority;
pub mod startup;
pub mod state;
pub mod store;
