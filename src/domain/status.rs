//! The named states of subscribers, stakes and payments, and the kinds of events, with the
//! exact upper-case spellings used in the database and the API.

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and published spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Where a subscriber stands (architecture §3, §6).
    SubscriberStatus {
        /// Meets every condition; its identity changed less than 150 blocks ago.
        CoolingDown = "COOLING_DOWN",
        /// Meets every condition and earns work.
        Active = "ACTIVE",
        /// No longer meets the conditions or removed the pool's address.
        Left = "LEFT",
        /// Banned by an admin.
        Banned = "BANNED",
    }
);

named_enum!(
    /// The fate of a stake.
    StakeStatus {
        /// Waiting for `maturity` confirmations.
        Maturing = "MATURING",
        /// Mature and split.
        Matured = "MATURED",
        /// Orphaned: no longer on the main chain.
        Stale = "STALE",
        /// Its reward was taken by a StakeGuard double-stake proof.
        StakeGuard = "STAKEGUARD",
    }
);

named_enum!(
    /// The payment state machine (architecture §4).
    PaymentStatus {
        /// Outputs fixed, balances moved into the payment.
        Planned = "PLANNED",
        /// Handed to verusd; operation id stored.
        Submitted = "SUBMITTED",
        /// Transaction id known.
        Sent = "SENT",
        /// Enough confirmations.
        Confirmed = "CONFIRMED",
        /// Proved never to be mined; balances credited back.
        Failed = "FAILED",
    }
);

named_enum!(
    /// What an event reports (architecture §5).
    EventKind {
        /// An identity met every condition.
        SubscriberJoined = "SUBSCRIBER_JOINED",
        /// A subscriber left or was banned.
        SubscriberLeft = "SUBSCRIBER_LEFT",
        /// A stake was found.
        StakeFound = "STAKE_FOUND",
        /// A stake matured and was split.
        StakeMatured = "STAKE_MATURED",
        /// A stake went stale or was taken by StakeGuard.
        StakeStale = "STAKE_STALE",
        /// A payment was sent.
        PaymentSent = "PAYMENT_SENT",
        /// Something changed on a subscriber's identity.
        IdentityAlert = "IDENTITY_ALERT",
    }
);

named_enum!(
    /// What changed on an identity.
    IdentityAlertKind {
        /// The delay lock was released: the identity unlocks after its delay.
        UnlockRequested = "UNLOCK_REQUESTED",
        /// Primary addresses changed.
        PrimaryAddressesChanged = "PRIMARY_ADDRESSES_CHANGED",
        /// Revocation or recovery authority changed.
        AuthoritiesChanged = "AUTHORITIES_CHANGED",
        /// The identity was revoked.
        Revoked = "REVOKED",
    }
);

named_enum!(
    /// An admin's or a subscriber's action on one identity, applied by the registry at the
    /// first height the pool had not processed (architecture §6: not a chain event).
    ActionKind {
        /// `banSubscriber(banned: true)`.
        Ban = "ban",
        /// `banSubscriber(banned: false)`.
        Unban = "unban",
        /// `subscribe` or discovery: start following an identity the pool did not know.
        Track = "track",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in SubscriberStatus::ALL {
            assert_eq!(SubscriberStatus::parse(s.as_str()), Some(*s));
        }
        for s in EventKind::ALL {
            assert_eq!(EventKind::parse(s.as_str()), Some(*s));
        }
        assert_eq!(
            StakeStatus::parse("STAKEGUARD"),
            Some(StakeStatus::StakeGuard)
        );
        assert_eq!(PaymentStatus::parse("sent"), None);
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(*k));
        }
    }
}
