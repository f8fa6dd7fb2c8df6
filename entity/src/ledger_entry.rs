//! `ledger_entry`: One movement of money; `identity_address` NULL is the pool's own account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entry")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: Option<String>,
    pub kind: String,
    pub amount: i64,
    pub stake_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub height: Option<i64>,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
