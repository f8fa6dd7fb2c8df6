//! The query root.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Result};

use crate::actors::subscriber_registry::check_identity;
use crate::graphql::args::{self, IdentityArg};
use crate::graphql::error::{Code, actor_error, api_error, rpc_error, store_error};
use crate::graphql::types::{IdentityCheck, Pool, Subscriber, SubscriberStatus};
use crate::state::AppState;
use crate::store;

/// Read-only queries for dashboards and wallets.
pub struct QueryRoot;

/// Looks a subscriber up by i-address or name.
pub async fn find_subscriber(
    state: &AppState,
    chain: &str,
    identity: &IdentityArg,
) -> Result<Option<store::subscribers::Subscriber>> {
    match identity {
        IdentityArg::Address(a) => store::subscribers::get(&state.db, chain, a)
            .await
            .map_err(store_error),
        IdentityArg::Name { normalized, .. } => {
            store::subscribers::get_by_name(&state.db, chain, normalized)
                .await
                .map_err(store_error)
        }
    }
}

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

    /// A subscriber by i-address or name; `null` if the identity never joined.
    async fn subscriber(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`, `alice.VRSC@`).")] identity: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Option<Subscriber>> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        Ok(find_subscriber(state, &chain.name, &arg)
            .await?
            .map(Subscriber))
    }

    /// Subscribers in join order, a page at a time.
    async fn subscribers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only subscribers with this status.")] status: Option<SubscriberStatus>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, Subscriber>> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let limit = args::page_size(first)?;
        let after_id = match after {
            Some(a) => Some(a.parse::<i64>().map_err(|_| {
                api_error(Code::InvalidInput, "after is not a cursor of this list")
            })?),
            None => None,
        };
        let mut rows = store::subscribers::list(
            &state.db,
            &chain.name,
            status.map(Into::into),
            after_id,
            limit + 1,
        )
        .await
        .map_err(store_error)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut connection = Connection::new(after_id.is_some(), has_next);
        connection.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(r.id.to_string(), Subscriber(r))),
        );
        Ok(connection)
    }

    /// Checks an identity against the pool's conditions as of the processed height; changes
    /// nothing.
    async fn check_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`).")] identity: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<IdentityCheck> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        let runtime = args::runtime(ctx, chain)?;
        let at = store::chain::processed_height(&state.db, &chain.name)
            .await
            .map_err(store_error)?;
        let reply = runtime
            .rpc
            .get_identity(&arg.for_daemon(), Some(at))
            .await
            .map_err(rpc_error)?;
        let tracked =
            store::identities::at(&state.db, &chain.name, &reply.identity.identityaddress, at)
                .await
                .map_err(store_error)?
                .is_some();
        let check = check_identity(&state.db, &runtime.rpc, chain, &reply, at, tracked)
            .await
            .map_err(actor_error)?;
        Ok(check.into())
    }
}
