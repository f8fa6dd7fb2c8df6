//! `subscriber`: An identity that lists the pool's R-address and met the conditions at least once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    pub status: String,
    pub joined_height: Option<i64>,
    pub left_height: Option<i64>,
    pub min_payout: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub unmet: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    /// The height of the last signed `setMinPayout` accepted (a signature is used once).
    pub min_payout_height: Option<i64>,
    /// Whether the event log last told clients the identity is in the pool.
    pub announced: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
