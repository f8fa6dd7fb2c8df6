//! Fee rates: percentages with at most 4 decimals, held exactly as parts per million.

use std::fmt;

/// Parts per million in 100 %.
pub const PPM_PER_WHOLE: u32 = 1_000_000;

/// A fee rate from 0 % to 100 %, in parts per million (`"3.33"` % = 33 300 ppm).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeeRate(u32);

/// Why a text is not a fee percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a fee percentage: {0:?}; write a percentage from 0 to 100 with at most 4 decimals, e.g. \"5\" or \"3.33\""
)]
pub struct FeeError(pub String);

impl FeeRate {
    /// From parts per million; `None` above 100 %.
    pub fn from_ppm(ppm: u32) -> Option<FeeRate> {
        (ppm <= PPM_PER_WHOLE).then_some(FeeRate(ppm))
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// Parses a percentage such as `"5"`, `"3.33"` or `"100"`.
    pub fn parse_percent(text: &str) -> Result<FeeRate, FeeError> {
        let err = || FeeError(text.to_owned());
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 3
            || !digits(whole)
            || !digits(frac)
            || frac.len() > 4
            || (text.contains('.') && frac.is_empty())
        {
            return Err(err());
        }
        let whole: u32 = whole.parse().map_err(|_| err())?;
        let mut ppm = whole * 10_000;
        for (i, b) in frac.bytes().enumerate() {
            ppm += u32::from(b - b'0') * 10_u32.pow(3 - i as u32);
        }
        FeeRate::from_ppm(ppm).ok_or_else(err)
    }
}

/// The shortest exact percentage: `5`, `3.33`, `0.0001`.
impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{frac:04}");
            write!(f, "{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

impl<'de> serde::Deserialize<'de> for FeeRate {
    /// Accepts `"3.33"` or a whole number `5`; refuses floats.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FeeRate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fee percentage as a string, e.g. \"3.33\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FeeRate, E> {
                FeeRate::parse_percent(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FeeRate, E> {
                FeeRate::parse_percent(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FeeRate, E> {
                FeeRate::parse_percent(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<FeeRate, E> {
                Err(E::custom(format!(
                    "write the fee {v} as a string (\"{v}\")"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_percentages_exactly() {
        assert_eq!(FeeRate::parse_percent("5").map(FeeRate::ppm), Ok(50_000));
        assert_eq!(FeeRate::parse_percent("3.33").map(FeeRate::ppm), Ok(33_300));
        assert_eq!(FeeRate::parse_percent("0.0001").map(FeeRate::ppm), Ok(1));
        assert_eq!(
            FeeRate::parse_percent("100").map(FeeRate::ppm),
            Ok(1_000_000)
        );
        assert_eq!(FeeRate::parse_percent("0").map(FeeRate::ppm), Ok(0));
        for text in ["5", "3.33", "0.0001", "100", "0", "12.3456"] {
            assert_eq!(
                FeeRate::parse_percent(text).map(|f| f.to_string()),
                Ok(text.to_owned())
            );
        }
    }

    #[test]
    fn refuses_out_of_range_and_garbage() {
        for bad in [
            "100.0001", "101", "-1", "1.23456", "", "5%", "1e2", ".5", "5.", "1000",
        ] {
            assert!(FeeRate::parse_percent(bad).is_err(), "{bad}");
        }
    }
}
