//! `registry_action`: an admin or subscriber action on one identity (ban, unban, track) at the
//! first height the pool had not processed; applied again whenever that height is connected.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_action")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub height: i64,
    pub identity_address: String,
    pub kind: String,
    pub applied: bool,
    pub announced: bool,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
