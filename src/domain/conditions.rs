//! The pool's conditions for subscribers and the pool settings that are versioned by height.

use serde::Deserialize;

use super::{FeeRate, Sats};

/// Conditions an identity must meet to be a subscriber (architecture §3). Also the
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

/// Identity flag: delay-locked; `timelock` is then the unlock delay in blocks.
pub const FLAG_LOCKED: u32 = 0x2;
/// Identity flag: revoked.
pub const FLAG_REVOKED: u32 = 0x8000;
/// Blocks after an identity update before its outputs may stake (`VERUS_MIN_STAKEAGE`).
pub const COOLDOWN_BLOCKS: i64 = 150;

/// What the conditions look at in an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFacts {
    /// The identity's i-address.
    pub address: String,
    /// Flag bits.
    pub flags: u32,
    /// Unlock delay (locked) or unlock height (unlocking).
    pub timelock: i64,
    /// Primary addresses.
    pub primary_addresses: Vec<String>,
    /// Signatures required.
    pub minimum_signatures: u32,
    /// Revocation authority.
    pub revocation_authority: String,
    /// Recovery authority.
    pub recovery_authority: String,
    /// `getidentity` status `revoked`.
    pub revoked_status: bool,
}

impl IdentityFacts {
    /// Revoked by flag or status.
    pub fn revoked(&self) -> bool {
        self.revoked_status || self.flags & FLAG_REVOKED != 0
    }

    /// Delay-locked (the lock bit, tested as a bit).
    pub fn locked(&self) -> bool {
        self.flags & FLAG_LOCKED != 0
    }

    /// An unlock was requested and has not completed at `height`: the lock bit is clear and
    /// `timelock` is a height still ahead.
    pub fn unlocking_at(&self, height: i64) -> bool {
        !self.locked() && self.timelock >= height
    }
}

/// Everything besides the identity that the conditions depend on.
#[derive(Clone)]
pub struct Context<'a> {
    /// The pool's R-address.
    pub pool_address: &'a str,
    /// The pool's identity.
    pub pool_identity: &'a str,
    /// The conditions in force.
    pub conditions: &'a Conditions,
    /// Identities the pool can sign for (those listing its R-address), the pool's included.
    pub pool_signable: &'a (dyn Fn(&str) -> bool + Sync),
    /// UTXOs that count against `max_utxos` (at least `utxo_count_min`, not paid by the pool
    /// identity, mined at or below the previous height).
    pub counted_utxos: u64,
    /// The height the evaluation is for (to tell a pending unlock).
    pub height: i64,
}

/// A condition an identity does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// It is the pool's own identity.
    PoolIdentity,
    /// The pool's R-address is not a primary address.
    PoolAddressMissing(String),
    /// More than one signature required.
    MultiSig(u32),
    /// Revoked.
    Revoked,
    /// Not delay-locked although a lock is required; `unlocking_until` when an unlock is pending.
    NotLocked {
        /// The minimum delay.
        min: u32,
        /// When a pending unlock completes.
        unlocking_until: Option<i64>,
    },
    /// Locked with too short a delay.
    LockTooShort {
        /// The minimum delay.
        min: u32,
        /// The identity's delay.
        actual: i64,
    },
    /// The revocation authority is the identity itself or one the pool can sign for.
    RevocationNotSeparate,
    /// The recovery authority is the identity itself or one the pool can sign for.
    RecoveryNotSeparate,
    /// Too many primary addresses.
    TooManyPrimaryAddresses {
        /// Allowed.
        max: u32,
        /// Has.
        actual: usize,
    },
    /// Too many UTXOs.
    TooManyUtxos {
        /// Allowed.
        max: u32,
        /// Has.
        actual: u64,
        /// Smallest counted.
        min_amount: Sats,
    },
}

impl std::fmt::Display for Unmet {
    /// A sentence a subscriber can act on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmet::PoolIdentity => write!(f, "the pool's own identity cannot be a subscriber"),
            Unmet::PoolAddressMissing(a) => {
                write!(
                    f,
                    "the pool's address {a} must be one of the identity's primary addresses; it is not"
                )
            }
            Unmet::MultiSig(n) => write!(
                f,
                "the identity must need exactly 1 signature; it needs {n}"
            ),
            Unmet::Revoked => write!(f, "the identity is revoked; recover it before joining"),
            Unmet::NotLocked {
                min,
                unlocking_until: Some(h),
            } => write!(
                f,
                "the identity must be delay-locked for at least {min} blocks; an unlock was requested and completes at height {h}"
            ),
            Unmet::NotLocked {
                min,
                unlocking_until: None,
            } => {
                write!(
                    f,
                    "the identity must be delay-locked for at least {min} blocks; it is not locked"
                )
            }
            Unmet::LockTooShort { min, actual } => {
                write!(
                    f,
                    "the identity must be delay-locked for at least {min} blocks; its unlock delay is {actual} blocks"
                )
            }
            Unmet::RevocationNotSeparate => write!(
                f,
                "the revocation authority must be another identity that the pool cannot sign for; it is the identity itself or one that lists the pool's address"
            ),
            Unmet::RecoveryNotSeparate => write!(
                f,
                "the recovery authority must be another identity that the pool cannot sign for; it is the identity itself or one that lists the pool's address"
            ),
            Unmet::TooManyPrimaryAddresses { max, actual } => {
                write!(
                    f,
                    "the identity may have at most {max} primary addresses; it has {actual}"
                )
            }
            Unmet::TooManyUtxos {
                max,
                actual,
                min_amount,
            } => write!(
                f,
                "the identity may hold at most {max} outputs of at least {min_amount} coins; it holds {actual}: consolidate them"
            ),
        }
    }
}

/// Every condition `id` fails (empty: it meets them all). Flags are tested bit by bit.
pub fn evaluate(id: &IdentityFacts, ctx: &Context<'_>) -> Vec<Unmet> {
    let c = ctx.conditions;
    let mut unmet = Vec::new();
    if id.address == ctx.pool_identity {
        unmet.push(Unmet::PoolIdentity);
    }
    if !id.primary_addresses.iter().any(|a| a == ctx.pool_address) {
        unmet.push(Unmet::PoolAddressMissing(ctx.pool_address.to_owned()));
    }
    if id.minimum_signatures != 1 {
        unmet.push(Unmet::MultiSig(id.minimum_signatures));
    }
    if id.revoked() {
        unmet.push(Unmet::Revoked);
    }
    if c.min_unlock_delay > 0 {
        if !id.locked() {
            let pending = id.unlocking_at(ctx.height).then_some(id.timelock);
            unmet.push(Unmet::NotLocked {
                min: c.min_unlock_delay,
                unlocking_until: pending,
            });
        } else if id.timelock < i64::from(c.min_unlock_delay) {
            unmet.push(Unmet::LockTooShort {
                min: c.min_unlock_delay,
                actual: id.timelock,
            });
        }
    }
    if c.require_separate_revoke_recover {
        let separate = |authority: &str| authority != id.address && !(ctx.pool_signable)(authority);
        if !separate(&id.revocation_authority) {
            unmet.push(Unmet::RevocationNotSeparate);
        }
        if !separate(&id.recovery_authority) {
            unmet.push(Unmet::RecoveryNotSeparate);
        }
    }
    if id.primary_addresses.len() > c.max_primary_addresses as usize {
        unmet.push(Unmet::TooManyPrimaryAddresses {
            max: c.max_primary_addresses,
            actual: id.primary_addresses.len(),
        });
    }
    if c.max_utxos > 0 && ctx.counted_utxos > u64::from(c.max_utxos) {
        unmet.push(Unmet::TooManyUtxos {
            max: c.max_utxos,
            actual: ctx.counted_utxos,
            min_amount: c.utxo_count_min,
        });
    }
    unmet
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL_R: &str = "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK";
    const POOL_ID: &str = "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e";
    const ALICE: &str = "i549DVi2YdWJdDo2mWnMFoDvYw8htg6YNe";
    const OTHER_SUBSCRIBER: &str = "iR1y3gPVjYTgr2oDWdM36V9VjoscQqekTY";

    fn alice() -> IdentityFacts {
        IdentityFacts {
            address: ALICE.into(),
            flags: FLAG_LOCKED,
            timelock: 1440,
            primary_addresses: vec!["RK9mYm318W51AzLUASEJhcEfS3vWjvMR3P".into(), POOL_R.into()],
            minimum_signatures: 1,
            revocation_authority: "iLwse2UyvGi7LiCeGFq5QKL8Fgs5Do1zZR".into(),
            recovery_authority: "iG7xjfVuTDgCCN3vse8bXbjYM3aVYLxBE2".into(),
            revoked_status: false,
        }
    }

    fn check(id: &IdentityFacts, conditions: &Conditions, utxos: u64) -> Vec<Unmet> {
        let signable = |a: &str| a == POOL_ID || a == OTHER_SUBSCRIBER;
        let ctx = Context {
            pool_address: POOL_R,
            pool_identity: POOL_ID,
            conditions,
            pool_signable: &signable,
            counted_utxos: utxos,
            height: 1000,
        };
        evaluate(id, &ctx)
    }

    #[test]
    fn a_locked_identity_with_separate_authorities_meets_the_defaults() {
        assert_eq!(check(&alice(), &Conditions::default(), 3), Vec::new());
    }

    #[test]
    fn each_condition_refuses_with_a_sentence() {
        let c = Conditions::default();
        let with = |f: &dyn Fn(&mut IdentityFacts)| {
            let mut id = alice();
            f(&mut id);
            check(&id, &c, 0)
        };
        let missing = with(&|id| id.primary_addresses.retain(|a| a != POOL_R));
        assert_eq!(missing, vec![Unmet::PoolAddressMissing(POOL_R.into())]);
        assert!(
            missing[0]
                .to_string()
                .contains("must be one of the identity's primary addresses")
        );
        assert_eq!(
            with(&|id| id.minimum_signatures = 2),
            vec![Unmet::MultiSig(2)]
        );
        assert_eq!(with(&|id| id.flags |= FLAG_REVOKED), vec![Unmet::Revoked]);
        assert_eq!(with(&|id| id.revoked_status = true), vec![Unmet::Revoked]);
        let unlocked = with(&|id| {
            id.flags = 0;
            id.timelock = 0;
        });
        assert_eq!(
            unlocked,
            vec![Unmet::NotLocked {
                min: 1440,
                unlocking_until: None
            }]
        );
        assert_eq!(
            unlocked[0].to_string(),
            "the identity must be delay-locked for at least 1440 blocks; it is not locked"
        );
        let unlocking = with(&|id| {
            id.flags = 0;
            id.timelock = 2460;
        });
        assert_eq!(
            unlocking,
            vec![Unmet::NotLocked {
                min: 1440,
                unlocking_until: Some(2460)
            }]
        );
        assert_eq!(
            with(&|id| id.timelock = 100),
            vec![Unmet::LockTooShort {
                min: 1440,
                actual: 100
            }]
        );
        // Other flag bits do not matter: flags are tested bit by bit.
        assert_eq!(with(&|id| id.flags = FLAG_LOCKED | 0x1 | 0x4), Vec::new());
        assert_eq!(
            with(&|id| {
                id.revocation_authority = ALICE.into();
                id.recovery_authority = ALICE.into();
            }),
            vec![Unmet::RevocationNotSeparate, Unmet::RecoveryNotSeparate]
        );
        assert_eq!(
            with(&|id| id.recovery_authority = OTHER_SUBSCRIBER.into()),
            vec![Unmet::RecoveryNotSeparate]
        );
        assert_eq!(
            with(&|id| id.revocation_authority = POOL_ID.into()),
            vec![Unmet::RevocationNotSeparate]
        );
        assert_eq!(
            with(&|id| id.address = POOL_ID.into()),
            vec![Unmet::PoolIdentity]
        );
    }

    #[test]
    fn limits_and_switched_off_conditions() {
        let strict = Conditions {
            max_primary_addresses: 2,
            max_utxos: 3,
            ..Conditions::default()
        };
        let mut id = alice();
        id.primary_addresses
            .push("RSgzZ8uKYLR9ugQgiFBP7b3JxjLikwShzF".into());
        assert_eq!(
            check(&id, &strict, 3),
            vec![Unmet::TooManyPrimaryAddresses { max: 2, actual: 3 }]
        );
        let utxos = check(&alice(), &strict, 4);
        assert_eq!(
            utxos,
            vec![Unmet::TooManyUtxos {
                max: 3,
                actual: 4,
                min_amount: Sats::coins(1)
            }]
        );
        assert!(
            utxos[0]
                .to_string()
                .contains("at most 3 outputs of at least 1.00000000 coins; it holds 4")
        );

        let lax = Conditions {
            min_unlock_delay: 0,
            require_separate_revoke_recover: false,
            ..Conditions::default()
        };
        let mut id = alice();
        id.flags = 0;
        id.revocation_authority = ALICE.into();
        id.recovery_authority = ALICE.into();
        assert_eq!(
            check(&id, &lax, 1000),
            Vec::new(),
            "no lock, no authority rule, no UTXO limit"
        );
    }
}
