//! coinstaker: the back-end of a non-custodial Verus staking pool.
//!
//! The binary is a thin shell over this library so that tests can build the whole
//! application (`startup::Application`) on port 0.

pub mod config;
pub mod domain;
pub mod store;
