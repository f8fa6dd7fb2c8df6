//! Work: Σ over heights of eligible balance in satoshis. It passes 2^63 (10^7 coins over
//! 10^5 blocks), so it is a `u128` in Rust and decimal text in the database and in GraphQL.

use std::fmt;
use std::str::FromStr;

/// An amount of work (satoshi-blocks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Work(pub u128);

/// Stored work that is not a non-negative decimal integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored work {0:?} is not a non-negative integer")]
pub struct WorkError(pub String);

impl Work {
    /// No work.
    pub const ZERO: Work = Work(0);
}

/// Saturating addition: u128 holds 3.4 × 10^38, far beyond any chain's supply × height.
impl std::ops::Add for Work {
    type Output = Work;
    fn add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Work {
    fn sum<I: Iterator<Item = Work>>(iter: I) -> Work {
        iter.fold(Work::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Work {
    type Err = WorkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WorkError(s.to_owned()));
        }
        s.parse::<u128>()
            .map(Work)
            .map_err(|_| WorkError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_beyond_64_bits() {
        let big = Work(1u128 << 100);
        assert_eq!(big.to_string(), "1267650600228229401496703205376");
        assert_eq!(big.to_string().parse::<Work>(), Ok(big));
        assert!("-1".parse::<Work>().is_err());
        assert!("1e5".parse::<Work>().is_err());
        assert!("".parse::<Work>().is_err());
        assert_eq!(
            [big, Work(5)].into_iter().sum::<Work>(),
            Work((1u128 << 100) + 5)
        );
        assert_eq!(Work(u128::MAX) + Work(1), Work(u128::MAX));
    }
}
