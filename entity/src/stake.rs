//! `stake`: A staked block the pool cares about, and its fate.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stake")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub block_hash: String,
    pub height: i64,
    pub found_by: String,
    pub reward: i64,
    pub status: String,
    pub solo: bool,
    pub pool_own: bool,
    pub round_start_height: i64,
    #[sea_orm(column_type = "Text")]
    pub total_work: String,
    pub pool_keep: Option<i64>,
    pub source_txid: Option<String>,
    pub source_vout: Option<i32>,
    pub source_amount: Option<i64>,
    pub status_height: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub note: Option<String>,
    pub coinbase_txid: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
