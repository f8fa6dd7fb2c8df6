//! The query root.

use async_graphql::{Context, Object, Result};

use crate::graphql::types::Pool;
use crate::state::AppState;

/// Read-only queries for dashboards and wallets.
pub struct QueryRoot;

/// Read-only queries for dashboards and wallets.
#[Object(name = "Query")]
impl QueryRoot {
    /// Every configured pool, one per chain, in configuration order.
    async fn pools(&self, ctx: &Context<'_>) -> Result<Vec<Pool>> {
        let state = ctx.data::<AppState>()?;
        Ok(state.config.chains.iter().map(Pool::new).collect())
    }

    /// One pool; `null` if no configured chain has that name or i-address.
    async fn pool(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Currency name (`VRSC`, case-insensitive) or its i-address; omitted = the first configured chain."
        )]
        chain: Option<String>,
    ) -> Result<Option<Pool>> {
        let state = ctx.data::<AppState>()?;
        Ok(state.resolve_chain(chain.as_deref()).await.map(Pool::new))
    }
}
