//! `subscriber_utxo`: A UTXO of an identity that lists the pool's R-address: mined at `height`, spent at `spent_height`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber_utxo")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain: String,
    pub identity_address: String,
    pub txid: String,
    pub vout: i32,
    pub amount: i64,
    pub height: i64,
    pub spent_height: Option<i64>,
    pub spent_txid: Option<String>,
    pub from_pool: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
