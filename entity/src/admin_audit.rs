//! `admin_audit`: One admin mutation: who (token hash prefix), what, when.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: Option<String>,
    pub token_prefix: String,
    pub mutation: String,
    #[sea_orm(column_type = "Text")]
    pub arguments: String,
    pub remote_addr: Option<String>,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
