//! `payment`: One batch payment (`sendcurrency`) and where it is in its state machine.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub status: String,
    pub opid: Option<String>,
    pub txid: Option<String>,
    pub total: i64,
    pub planned_height: i64,
    pub sent_height: Option<i64>,
    pub confirmed_height: Option<i64>,
    pub expiry_height: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub error: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
