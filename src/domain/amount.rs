//! Money: integer satoshis end to end. A coin is 10^8 satoshis; amounts are written as
//! decimal strings with exactly 8 fractional digits and read with 0–8 fractional digits.
//! Nothing here goes through floating point.

use std::fmt;
use std::str::FromStr;

/// Satoshis per coin.
pub const COIN: i64 = 100_000_000;

/// An amount of money in satoshis. Non-negative when parsed from user input; arithmetic on
/// balances may produce negative values, which the ledger check reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sats(pub i64);

/// Why a text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty input.
    #[error("an amount cannot be empty; write coins like \"12.5\"")]
    Empty,
    /// A leading minus sign.
    #[error("an amount cannot be negative")]
    Negative,
    /// More than 8 fractional digits.
    #[error("an amount has at most 8 decimals (1 satoshi = 0.00000001)")]
    TooPrecise,
    /// Anything that is not digits with an optional decimal point.
    #[error("not an amount: {0:?}; write coins as a decimal string like \"12.5\"")]
    Malformed(String),
    /// More than i64 satoshis.
    #[error("amount too large")]
    Overflow,
}

impl Sats {
    /// Zero satoshis.
    pub const ZERO: Sats = Sats(0);

    /// Whole coins as satoshis (for constants and tests).
    pub const fn coins(n: i64) -> Sats {
        Sats(n * COIN)
    }

    /// Parses coins written as a decimal string: digits, optionally a point and 1–8 digits.
    /// No sign, no exponent, no spaces, no thousands separators.
    pub fn parse_coins(text: &str) -> Result<Sats, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(frac)
            || (text.contains('.') && frac.is_empty())
        {
            return Err(AmountError::Malformed(text.to_owned()));
        }
        if frac.len() > 8 {
            return Err(AmountError::TooPrecise);
        }
        let whole: i64 = whole.parse().map_err(|_| AmountError::Overflow)?;
        let mut frac_sats: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_sats += i64::from(b - b'0') * 10_i64.pow(7 - i as u32);
        }
        whole
            .checked_mul(COIN)
            .and_then(|w| w.checked_add(frac_sats))
            .map(Sats)
            .ok_or(AmountError::Overflow)
    }

    /// Parses the text of a JSON number of coins, as verusd writes amounts (`12.84211007`,
    /// `0.00000001`, and from other tools `1e-8`), exactly: the digits are read as a decimal,
    /// never through `f64`. A value that is not a whole number of satoshis is refused.
    /// Negative amounts are accepted (some replies carry deltas).
    pub fn parse_json_number(text: &str) -> Result<Sats, AmountError> {
        let text = text.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        let malformed = || AmountError::Malformed(text.to_owned());
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (
                &body[..i],
                body[i + 1..].parse::<i32>().map_err(|_| malformed())?,
            ),
            None => (body, 0),
        };
        let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(frac)
            || (mantissa.contains('.') && frac.is_empty())
        {
            return Err(malformed());
        }
        // value = int(whole frac) × 10^(exponent − len(frac)); satoshis = value × 10^8.
        let all = format!("{whole}{frac}");
        let all = all.trim_start_matches('0');
        let shift = i64::from(exponent) - frac.len() as i64 + 8;
        let mut sats: i128 = if all.is_empty() {
            0
        } else {
            all.parse().map_err(|_| AmountError::Overflow)?
        };
        if shift >= 0 {
            let factor =
                10_i128.checked_pow(u32::try_from(shift).map_err(|_| AmountError::Overflow)?);
            sats = factor
                .and_then(|f| sats.checked_mul(f))
                .ok_or(AmountError::Overflow)?;
        } else {
            let Some(divisor) = u32::try_from(-shift)
                .ok()
                .and_then(|s| 10_i128.checked_pow(s))
            else {
                return if sats == 0 {
                    Ok(Sats::ZERO)
                } else {
                    Err(AmountError::TooPrecise)
                };
            };
            if sats % divisor != 0 {
                return Err(AmountError::TooPrecise);
            }
            sats /= divisor;
        }
        let sats = i64::try_from(sats).map_err(|_| AmountError::Overflow)?;
        Ok(Sats(if negative { -sats } else { sats }))
    }

    /// Checked addition.
    pub fn checked_add(self, other: Sats) -> Option<Sats> {
        self.0.checked_add(other.0).map(Sats)
    }

    /// Checked subtraction.
    pub fn checked_sub(self, other: Sats) -> Option<Sats> {
        self.0.checked_sub(other.0).map(Sats)
    }
}

impl FromStr for Sats {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sats::parse_coins(s)
    }
}

/// Coins with exactly 8 decimals: `12.50000000`, `-0.00000001`.
impl fmt::Display for Sats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let coin = COIN.unsigned_abs();
        write!(f, "{sign}{}.{:08}", abs / coin, abs % coin)
    }
}

impl std::iter::Sum for Sats {
    fn sum<I: Iterator<Item = Sats>>(iter: I) -> Sats {
        Sats(iter.map(|s| s.0).sum())
    }
}

impl<'de> serde::Deserialize<'de> for Sats {
    /// Accepts a string of coins (`"0.5"`) or a whole number of coins (`2`); refuses floats,
    /// which cannot hold every 8-decimal amount exactly.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Sats;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount in coins as a string, e.g. \"0.5\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sats, E> {
                Sats::parse_coins(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Sats, E> {
                if v < 0 {
                    return Err(E::custom(AmountError::Negative));
                }
                v.checked_mul(COIN)
                    .map(Sats)
                    .ok_or_else(|| E::custom(AmountError::Overflow))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Sats, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom(AmountError::Overflow))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Sats, E> {
                Err(E::custom(format!(
                    "write the amount {v} as a string (\"{v}\"): a floating-point number cannot hold every amount exactly"
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
    fn parses_and_formats_exactly() {
        assert_eq!(Sats::parse_coins("12.5"), Ok(Sats(1_250_000_000)));
        assert_eq!(Sats::parse_coins("0.00000001"), Ok(Sats(1)));
        assert_eq!(
            Sats::parse_coins("15234.56789012"),
            Ok(Sats(1_523_456_789_012))
        );
        assert_eq!(Sats::parse_coins("7"), Ok(Sats(700_000_000)));
        assert_eq!(Sats(1_250_000_000).to_string(), "12.50000000");
        assert_eq!(Sats(1).to_string(), "0.00000001");
        assert_eq!(Sats(-1).to_string(), "-0.00000001");
        assert_eq!(Sats(0).to_string(), "0.00000000");
        for s in ["0.1", "92233720368.54775807", "1.23456789"] {
            let sats = Sats::parse_coins(s).unwrap();
            assert_eq!(Sats::parse_coins(&sats.to_string()), Ok(sats));
        }
    }

    #[test]
    fn reads_json_numbers_exactly() {
        let p = |t: &str| Sats::parse_json_number(t);
        assert_eq!(p("0.00000001"), Ok(Sats(1)));
        assert_eq!(p("21000000.00000000"), Ok(Sats(2_100_000_000_000_000)));
        assert_eq!(p("21000000"), Ok(Sats(2_100_000_000_000_000)));
        assert_eq!(p("1e-8"), Ok(Sats(1)));
        assert_eq!(p("1E-8"), Ok(Sats(1)));
        assert_eq!(p("2.5e3"), Ok(Sats(250_000_000_000)));
        assert_eq!(p("15234.56789012"), Ok(Sats(1_523_456_789_012)));
        assert_eq!(
            p("83540184.12345678"),
            Ok(Sats(8_354_018_412_345_678)),
            "16 significant digits, beyond f64's exact range"
        );
        assert_eq!(p("-0.0001"), Ok(Sats(-10_000)));
        assert_eq!(p("0.0"), Ok(Sats(0)));
        assert_eq!(
            p("\"41873512.11835042\""),
            Ok(Sats(4_187_351_211_835_042)),
            "stakingsupply as a string"
        );
        assert_eq!(p("1e-9"), Err(AmountError::TooPrecise));
        assert_eq!(p("0.123456789"), Err(AmountError::TooPrecise));
        assert_eq!(p("1e400"), Err(AmountError::Overflow));
        assert_eq!(p("100000000000"), Err(AmountError::Overflow));
        for bad in ["", "abc", "1.", ".5", "1e", "--1", "0x10", "NaN", "true"] {
            assert!(
                matches!(p(bad), Err(AmountError::Malformed(_) | AmountError::Empty)),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(Sats::parse_coins(""), Err(AmountError::Empty));
        assert_eq!(Sats::parse_coins("-1"), Err(AmountError::Negative));
        assert_eq!(
            Sats::parse_coins("1.123456789"),
            Err(AmountError::TooPrecise)
        );
        assert_eq!(
            Sats::parse_coins("92233720368.54775808"),
            Err(AmountError::Overflow)
        );
        for bad in ["1e3", "1.", ".5", " 1", "1,5", "abc", "+1", "1.2.3", "0x10"] {
            assert!(
                matches!(Sats::parse_coins(bad), Err(AmountError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
