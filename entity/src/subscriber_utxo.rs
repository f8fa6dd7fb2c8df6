//! `subscriber_utxo`: A UTXO of an identity that lists the pool's R-address: mined at `height`, spent at `spent_height`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber_utxo")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: String,
    pub txid: String,
    pub vout: i32,
    pub amount: i64,
    pub height: i64,
    pub spent_height: Option<i64>,
    pub spent_txid: Option<String>,
    pub from_pool: bool,
    /// [`text_key`] of `txid`: what `ix_utxo_txid_key` orders (the text is still compared).
    pub txid_key: i64,
    /// [`text_key`] of `identity_address`: what `ix_utxo_identity_key` orders.
    pub identity_key: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The 64-bit key of an identity address or a transaction id in `subscriber_utxo`'s indexes:
/// FNV-1a of its bytes. An index of 8-byte keys costs a block's inserts about half what the
/// same index of text costs (BENCHMARKS.md, eleventh round). Two texts may share a key, so
/// every statement compares the text too; a key only finds candidates.
///
/// Stored in the database: this function must never change.
pub fn text_key(text: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = text
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::text_key;

    #[test]
    fn text_key_is_fnv_1a() {
        // The published FNV-1a 64 test vectors (the empty string, "a", "foobar").
        assert_eq!(text_key("") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(text_key("a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(text_key("foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
