//! Pure domain logic with no I/O: amounts in satoshis, fee rates, addresses, work.
//!
//! Everything here parses ("parse, don't validate"): once a value has one of these types it
//! is known to be well formed, so the layers above never re-check it.

pub mod address;
pub mod amount;
pub mod chain;
pub mod conditions;
pub mod fee;
pub mod split;
pub mod status;
pub mod work;

pub use address::{IdentityAddress, RAddress};
pub use amount::Sats;
pub use conditions::{Conditions, PoolSettings};
pub use fee::FeeRate;
pub use status::{
    ActionKind, EventKind, IdentityAlertKind, PaymentStatus, StakeStatus, SubscriberStatus,
};
pub use work::Work;

/// A block height. Verus heights fit easily in `u32`; `i64` matches the database columns.
pub type Height = i64;

/// `1 identity`, `2 identities`: a count with its noun, for log and event messages.
pub fn count_of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
