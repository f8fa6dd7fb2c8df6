//! The pool's conditions for subscribers and the pool settings that are versioned by height.

use serde::Deserialize;

use super::{FeeRate, Sats};

/// Conditions an identity must meet to be a subscriber (DESIGN §4). Also the
/// `[chain.conditions]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Minimum delay lock in blocks; 0 = no lock required.
    #[serde(default = "default_min_unlock_delay")]
    pub min_unlock_delay: u32,
    /// Revocation and recovery authorities must differ from the identity and from every
    /// identity the pool can sign for.
    #[serde(default = "default_true")]
    pub require_separate_revoke_recover: bool,
    /// At most this many primary addresses (≤ 25, the protocol's limit).
    #[serde(default = "default_max_primary")]
    pub max_primary_addresses: u32,
    /// At most this many UTXOs of at least `utxo_count_min`; 0 = no limit.
    #[serde(default)]
    pub max_utxos: u32,
    /// Smaller UTXOs are not counted against `max_utxos`.
    #[serde(default = "default_utxo_count_min")]
    pub utxo_count_min: Sats,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            min_unlock_delay: default_min_unlock_delay(),
            require_separate_revoke_recover: true,
            max_primary_addresses: default_max_primary(),
            max_utxos: 0,
            utxo_count_min: default_utxo_count_min(),
        }
    }
}

fn default_min_unlock_delay() -> u32 {
    1440
}
fn default_true() -> bool {
    true
}
fn default_max_primary() -> u32 {
    25
}
fn default_utxo_count_min() -> Sats {
    Sats::coins(1)
}

/// Fee, default minimum payout and conditions: what an admin may change, in force from a
/// height on (stored in `pool_settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The pool's fee.
    pub fee: FeeRate,
    /// Default minimum payout.
    pub min_payout: Sats,
    /// Subscriber conditions.
    pub conditions: Conditions,
}
