//! Custom scalars: `Amount` (coins with exactly 8 decimals) and `BigInt` (work).

use async_graphql::{Description, InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::domain::{Sats, Work};

/// An amount of coins as a decimal string with exactly 8 fractional digits
/// (`"12.50000000"`). As input it accepts 0 to 8 fractional digits (`"12.5"`); a sign, an
/// exponent, more digits or anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Description)]
pub struct Amount(pub Sats);

#[Scalar(name = "Amount", use_type_description)]
impl ScalarType for Amount {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Sats::parse_coins(&s)
                .map(Amount)
                .map_err(|e| InputValueError::custom(e.to_string())),
            _ => Err(InputValueError::custom(
                "an Amount is a string of coins, e.g. \"12.5\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A non-negative integer as a decimal string; work passes 2^53 and 2^63.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Description)]
pub struct BigInt(pub Work);

#[Scalar(name = "BigInt", use_type_description)]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => s
                .parse::<Work>()
                .map(BigInt)
                .map_err(|e| InputValueError::custom(e.to_string())),
            _ => Err(InputValueError::custom(
                "a BigInt is a decimal string, e.g. \"123\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
