//! `payout_state`: Whether payouts are paused, and when the last payout cycle completed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payout_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chain: String,
    pub paused: bool,
    #[sea_orm(column_type = "Text")]
    pub paused_reason: Option<String>,
    pub last_cycle_at: Option<DateTime>,
    pub updated_at: DateTime,
    /// The ledger check that failed and holds payouts until a check passes.
    #[sea_orm(column_type = "Text")]
    pub check_failure: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
