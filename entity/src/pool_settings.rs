//! `pool_settings`: Pool fee, minimum payout and conditions, in force from `from_height`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pool_settings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub from_height: i64,
    pub fee_ppm: i64,
    pub min_payout: i64,
    pub min_unlock_delay: i64,
    pub require_separate_revoke_recover: bool,
    pub max_primary_addresses: i32,
    pub max_utxos: i32,
    pub utxo_count_min: i64,
    pub source: String,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
