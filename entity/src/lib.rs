//! SeaORM entities of coinstaker: one table per module, no business logic.
//!
//! Money columns are `i64` satoshis; work columns are decimal `String`s holding a u128.

pub mod actor_cursor;
pub mod admin_audit;
pub mod balance;
pub mod block;
pub mod chain_info;
pub mod counter;
pub mod credit;
pub mod eligibility_interval;
pub mod event;
pub mod identity_version;
pub mod leader_lease;
pub mod ledger_entry;
pub mod payment;
pub mod payment_output;
pub mod payout_state;
pub mod pool_settings;
pub mod pool_stats;
pub mod registry_action;
pub mod stake;
pub mod subscriber;
pub mod subscriber_fee;
pub mod subscriber_status;
pub mod subscriber_utxo;
pub mod webhook_state;
