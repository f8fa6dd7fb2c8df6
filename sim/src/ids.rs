//! Deterministic ids for the simulated chain: addresses, hashes and txids.

use sha2::{Digest, Sha256};

/// Version byte of R-addresses.
pub const R_VERSION: u8 = 60;
/// Version byte of i-addresses.
pub const I_VERSION: u8 = 102;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex; `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A base58check address with `version`, derived from `seed`.
pub fn address(version: u8, seed: &str) -> String {
    let hash = sha256(seed.as_bytes());
    let mut payload = vec![version];
    payload.extend_from_slice(&hash[..20]);
    bs58::encode(payload).with_check().into_string()
}

/// An R-address derived from `seed`.
pub fn r_address(seed: &str) -> String {
    address(R_VERSION, seed)
}

/// The i-address of an identity `name` under `parent` (simulated: not verusd's real hash).
pub fn identity_address(name: &str, parent: &str) -> String {
    address(
        I_VERSION,
        &format!("identity:{}:{parent}", name.to_lowercase()),
    )
}

/// Whether `text` is a base58check address with `version`.
pub fn is_address(text: &str, version: u8) -> bool {
    matches!(bs58::decode(text).with_check(None).into_vec(), Ok(b) if b.len() == 21 && b[0] == version)
}

/// A 64-hex-digit id from `seed`; `zeros` leading zero digits make block hashes look mined.
pub fn hash_hex(seed: &str, zeros: usize) -> String {
    let h = hex(&sha256(seed.as_bytes()));
    format!("{}{}", "0".repeat(zeros), &h[zeros..])
}

/// A small deterministic PRNG (xorshift64*), so scenarios replay identically.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_valid_base58check() {
        let r = r_address("pool");
        assert!(r.starts_with('R') && is_address(&r, R_VERSION));
        let i = identity_address("alice", "VRSC");
        assert!(i.starts_with('i') && is_address(&i, I_VERSION));
        assert_eq!(i, identity_address("ALICE", "VRSC"));
        assert!(!is_address(&i, R_VERSION));
    }
}
