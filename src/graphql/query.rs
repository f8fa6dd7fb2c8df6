//! The query root.

use async_graphql::{Context, Object, Result};

use crate::actors::subscriber_registry::check_identity;
use crate::graphql::args::{self, IdentityArg};
use crate::graphql::error::{Code, actor_error, api_error, store_error};
use crate::graphql::types::page::paged;
use crate::graphql::types::{
    Event, EventConnection, EventKind, IdentityCheck, Payment, PaymentConnection, PaymentStatus,
    Pool, PoolStats, Stake, StakeConnection, StakeStatus, Subscriber, SubscriberConnection,
    SubscriberStatus,
};
use crate::state::AppState;
use crate::store;

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
        Ok(args::find_subscriber(state, &chain.name, &arg)
            .await?
            .map(Subscriber))
    }

    /// Subscribers in join order, a page at a time.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn subscribers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only subscribers with this status.")] status: Option<SubscriberStatus>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<SubscriberConnection> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let limit = args::page_size(first)?;
        let after_id = match after {
            Some(a) => Some(a.parse::<i64>().map_err(|_| {
                api_error(Code::InvalidInput, "after is not a cursor of this list")
            })?),
            None => None,
        };
        let rows = store::subscribers::list(
            &state.db,
            &chain.name,
            status.map(Into::into),
            after_id,
            limit + 1,
        )
        .await
        .map_err(store_error)?;
        Ok(paged(rows, limit, after_id.is_some(), |r| {
            (r.id.to_string(), Subscriber(r))
        })
        .into())
    }

    /// Stakes, newest first.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn stakes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only stakes with this status.")] status: Option<StakeStatus>,
        #[graphql(desc = "Only stakes found by or credited to this identity (i-address).")]
        identity: Option<String>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<StakeConnection> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let limit = args::page_size(first)?;
        let before = args::cursor(after.as_deref())?;
        let identity = args::identity_filter(state, &chain.name, identity.as_deref()).await?;
        let rows = store::stakes::list(
            &state.db,
            &chain.name,
            status.map(Into::into),
            identity.as_deref(),
            before,
            limit + 1,
        )
        .await
        .map_err(store_error)?;
        Ok(paged(rows, limit, before.is_some(), |s| {
            (s.id.to_string(), Stake(s))
        })
        .into())
    }

    /// Payments, newest first.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only payments with an output to this identity.")] identity: Option<
            String,
        >,
        #[graphql(desc = "Only payments with this status.")] status: Option<PaymentStatus>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<PaymentConnection> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let limit = args::page_size(first)?;
        let before = args::cursor(after.as_deref())?;
        let identity = args::identity_filter(state, &chain.name, identity.as_deref()).await?;
        let rows = store::payments::list(
            &state.db,
            &chain.name,
            status.map(Into::into),
            identity.as_deref(),
            before,
            limit + 1,
        )
        .await
        .map_err(store_error)?;
        Ok(paged(rows, limit, before.is_some(), |p| {
            (p.id.to_string(), Payment(p))
        })
        .into())
    }

    /// Stored events, oldest first: the same events the subscriptions push, for clients that
    /// poll. An edge cursor equals the event's `cursor`; either works as `after` here and in
    /// the `events` subscription.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only events after this cursor; omitted = from the first event.")]
        after: Option<String>,
        #[graphql(desc = "Only these kinds; omitted or empty = every kind.")] kinds: Option<
            Vec<EventKind>,
        >,
        #[graphql(
            desc = "Only events about this identity (an i-address or a name); a payment is about every identity it pays."
        )]
        identity: Option<String>,
        #[graphql(desc = "Page size, at most 500.", default = 100)] first: i32,
    ) -> Result<EventConnection> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let limit = args::page_size(first)?;
        let after = args::cursor(after.as_deref())?;
        let identity = args::identity_filter(state, &chain.name, identity.as_deref()).await?;
        let filter = store::events::EventFilter {
            chain: Some(chain.name.clone()),
            after,
            kinds: kinds
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            identity_address: identity,
        };
        let rows = store::events::list(&state.db, &filter, limit + 1)
            .await
            .map_err(store_error)?;
        Ok(paged(rows, limit, after.is_some(), |e| {
            (e.id.to_string(), Event(std::sync::Arc::new(e)))
        })
        .into())
    }

    /// A stake by its block hash.
    async fn stake(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The staked block's hash.")] block_hash: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Option<Stake>> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        Ok(store::stakes::get(&state.db, &chain.name, &block_hash)
            .await
            .map_err(store_error)?
            .map(Stake))
    }

    /// Pool statistics by height (at most 2,000 rows), for charts.
    async fn pool_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "First height; omitted = 2,000 steps before the last.")]
        from_height: Option<i32>,
        #[graphql(desc = "Last height; omitted = the processed height.")] to_height: Option<i32>,
        #[graphql(desc = "Every step-th height.", default = 1)] step: i32,
    ) -> Result<Vec<PoolStats>> {
        const MAX_ROWS: i64 = 2000;
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        if step < 1 {
            return Err(api_error(Code::InvalidInput, "step must be at least 1"));
        }
        let step = i64::from(step);
        let to = match to_height {
            Some(t) => i64::from(t),
            None => store::chain::processed_height(&state.db, &chain.name)
                .await
                .map_err(store_error)?,
        };
        let from = from_height
            .map_or(to - step * (MAX_ROWS - 1), i64::from)
            .max(0);
        if to < from {
            return Ok(Vec::new());
        }
        if (to - from) / step + 1 > MAX_ROWS {
            return Err(api_error(
                Code::InvalidInput,
                format!("at most {MAX_ROWS} rows: narrow the range or raise step"),
            ));
        }
        let heights: Vec<i64> = (from..=to).step_by(step as usize).collect();
        let rows = store::stats::at_heights(&state.db, &chain.name, &heights)
            .await
            .map_err(store_error)?;
        let staked: std::collections::HashSet<i64> =
            store::stakes::heights_between(&state.db, &chain.name, from, to)
                .await
                .map_err(store_error)?
                .into_iter()
                .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let found = i32::from(staked.contains(&r.height));
                PoolStats::new(r, found)
            })
            .collect())
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
        args::without_turn(ctx, async {
            let (_slot, at, reply, stored) =
                args::identity_now(state, runtime, chain, &arg).await?;
            let tracked = stored.is_some();
            let check = check_identity(&state.db, &runtime.rpc, chain, &reply, at, tracked)
                .await
                .map_err(actor_error)?;
            Ok(check.into())
        })
        .await
    }
}
