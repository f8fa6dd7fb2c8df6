//! Verus addresses: base58check with a one-byte version and a 20-byte hash.
//! R-addresses (keys) use version 60, i-addresses (identities, currencies) version 102.

use std::fmt;

const R_VERSION: u8 = 60;
const I_VERSION: u8 = 102;

/// Why a text is not the address asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {kind}: {why}")]
pub struct AddressError {
    text: String,
    kind: &'static str,
    why: String,
}

fn decode(text: &str, version: u8, kind: &'static str) -> Result<(), AddressError> {
    let err = |why: String| AddressError {
        text: text.to_owned(),
        kind,
        why,
    };
    let bytes = bs58::decode(text)
        .with_check(None)
        .into_vec()
        .map_err(|e| err(format!("bad base58check encoding ({e})")))?;
    match bytes.as_slice() {
        [v, rest @ ..] if *v == version && rest.len() == 20 => Ok(()),
        [v, rest @ ..] if rest.len() == 20 => {
            Err(err(format!("version byte {v}, expected {version}")))
        }
        _ => Err(err(format!("{} bytes, expected 21", bytes.len()))),
    }
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $version:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and checks the base58check encoding and version byte.
            pub fn parse(text: &str) -> Result<Self, AddressError> {
                decode(text, $version, $kind).map(|()| Self(text.to_owned()))
            }

            /// The address as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = AddressError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

address_type!(
    /// A transparent key address (`R…`), such as the pool's primary address.
    RAddress,
    R_VERSION,
    "R-address (R…)"
);
address_type!(
    /// An identity or currency address (`i…`).
    IdentityAddress,
    I_VERSION,
    "i-address (i…)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fixture_addresses() {
        assert!(RAddress::parse("RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK").is_ok());
        assert!(RAddress::parse("RCG8KwJNDVwpUBcdoa6AoHqHVJsA1uMYMR").is_ok());
        assert!(IdentityAddress::parse("iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e").is_ok());
        assert!(IdentityAddress::parse("i5w5MuNik5NtLcYmNzcvaoixooEebB6MGV").is_ok());
    }

    #[test]
    fn refuses_wrong_kind_and_corruption() {
        let err = IdentityAddress::parse("RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK").unwrap_err();
        assert!(err.to_string().contains("version byte 60"), "{err}");
        assert!(RAddress::parse("iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e").is_err());
        // One character changed: the checksum no longer matches.
        assert!(RAddress::parse("RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMJ").is_err());
        assert!(RAddress::parse("").is_err());
        assert!(RAddress::parse("R0OIl").is_err());
    }
}
