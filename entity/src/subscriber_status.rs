//! `subscriber_status`: One status change of a subscriber, in force from `height`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber_status")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: String,
    pub height: i64,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub created_at: DateTime,
    /// The `registry_action` this change came from; `None`: the chain.
    pub action_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
