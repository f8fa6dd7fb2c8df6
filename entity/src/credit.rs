//! `credit`: What one identity earned from one matured stake, with the work behind it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub stake_id: i64,
    pub identity_address: String,
    pub height: i64,
    #[sea_orm(column_type = "Text")]
    pub work: String,
    pub amount: i64,
    pub fee: i64,
    pub fee_ppm: i64,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
