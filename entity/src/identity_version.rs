//! `identity_version`: One version of an identity, as mined at `height`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identity_version")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: String,
    pub height: i64,
    pub txid: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    pub parent: Option<String>,
    pub flags: i64,
    pub timelock: i64,
    pub minimum_signatures: i32,
    #[sea_orm(column_type = "Text")]
    pub primary_addresses: String,
    pub revocation_authority: String,
    pub recovery_authority: String,
    pub revoked: bool,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
