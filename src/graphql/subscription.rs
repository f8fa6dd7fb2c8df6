//! The subscription root: events pushed over WebSocket as the Notifier publishes them.
//!
//! `events(after:)` first replays stored events after the cursor, then goes on live with no gap
//! and no duplicate: it subscribes to the live feed *before* reading the log, reads the log
//! until it is exhausted, and then skips live events it has already sent (ids are handed out in
//! commit order, so "id ≤ last sent" is exactly "already sent or filtered out"). A listener
//! that falls more than the feed's buffer behind gets one error with `extensions.code =
//! LAGGED` and `extensions.resumeAfter` (the cursor to resume after), and its stream ends; the
//! pool never waits for it.

use std::sync::Arc;

use async_graphql::{Context, Result, Subscription};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::actors::notifier::EventFeed;
use crate::domain::EventKind as Kind;
use crate::graphql::args;
use crate::graphql::error::{Code, api_error, store_error};
use crate::graphql::types::{Event, EventKind};
use crate::state::AppState;
use crate::store::events::{self, EventFilter};

/// How many stored events one replay read takes.
const REPLAY_BATCH: u64 = 200;

/// Live events.
pub struct SubscriptionRoot;

/// The stream of a subscription with these arguments.
async fn subscribe(
    ctx: &Context<'_>,
    chain: Option<String>,
    identity: Option<String>,
    kinds: Vec<Kind>,
    after: Option<i64>,
) -> Result<impl Stream<Item = Result<Event>> + use<>> {
    let state = ctx.data::<AppState>()?;
    let chain = args::chain(ctx, chain.as_deref()).await?;
    let identity_address = args::identity_filter(state, &chain.name, identity.as_deref()).await?;
    let filter = EventFilter {
        chain: Some(chain.name.clone()),
        after: None,
        kinds,
        identity_address,
    };
    Ok(stream(state, filter, after))
}

/// The stream of events matching `filter`: stored ones after `after` first (when given), then
/// live ones.
fn stream(
    state: &AppState,
    filter: EventFilter,
    after: Option<i64>,
) -> impl Stream<Item = Result<Event>> + use<> {
    let db = state.db.clone();
    let feed: EventFeed = state.feed.clone();
    // Subscribe before anything is read, so that nothing published from now on is missed.
    let mut live = feed.subscribe();
    let start = feed.published();
    let guard = state.metrics.subscription_opened();
    async_stream::stream! {
        let _open = guard;
        // The last id examined (sent or filtered out), and the last id sent.
        // Without `after` the receiver holds only events published after it was made.
        let mut seen = after.unwrap_or(0);
        let mut sent = after.unwrap_or(start);
        let mut replaying = after.is_some();
        // True from the end of a replay until the first live event: a lag then happened while
        // reading the log, not because the client reads slowly.
        let mut fresh_from_log = false;
        loop {
            if replaying {
                let page = events::list(
                    &db,
                    &EventFilter { after: Some(seen), ..filter.clone() },
                    REPLAY_BATCH,
                )
                .await;
                match page {
                    Ok(rows) => {
                        let done = (rows.len() as u64) < REPLAY_BATCH;
                        for row in rows {
                            seen = row.id;
                            sent = row.id;
                            yield Ok(Event(Arc::new(row)));
                        }
                        if done {
                            replaying = false;
                            fresh_from_log = true;
                        }
                        continue;
                    }
                    Err(e) => {
                        yield Err(store_error(e));
                        break;
                    }
                }
            }
            match live.recv().await {
                Ok(event) => {
                    fresh_from_log = false;
                    if event.id <= seen {
                        continue;
                    }
                    seen = event.id;
                    if event.matches(&filter) {
                        sent = event.id;
                        yield Ok(Event(event));
                    }
                }
                // Fell behind while reading the log: the log still has everything that was
                // missed, so read on from there.
                Err(RecvError::Lagged(_)) if fresh_from_log => {
                    replaying = true;
                }
                Err(RecvError::Lagged(missed)) => {
                    yield Err(lagged(missed, sent));
                    break;
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// The error a listener gets when it fell too far behind.
fn lagged(missed: u64, sent: i64) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    api_error(
        Code::Lagged,
        format!(
            "this subscription fell {missed} events behind and was ended; subscribe again with events(after: \"{sent}\") to resume without a gap"
        ),
    )
    .extend_with(|_, e| e.set("resumeAfter", sent.to_string()))
}

/// Live events. Every field takes `chain` (a currency name or i-address; omitted = the first
/// configured chain); `identity` (an i-address or a name) keeps only the events about that
/// identity (a payment is about every identity it pays).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Identities that joined the pool.
    async fn subscriber_joined(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, None, vec![Kind::SubscriberJoined], None).await
    }

    /// Subscribers that left or were banned.
    async fn subscriber_left(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, None, vec![Kind::SubscriberLeft], None).await
    }

    /// Stakes found.
    async fn stake_found(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only stakes of this identity (an i-address or a name).")]
        identity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, identity, vec![Kind::StakeFound], None).await
    }

    /// Stakes that matured and were split.
    async fn stake_matured(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only stakes of this identity (an i-address or a name).")]
        identity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, identity, vec![Kind::StakeMatured], None).await
    }

    /// Stakes orphaned or taken by StakeGuard.
    async fn stake_stale(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only stakes of this identity (an i-address or a name).")]
        identity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, identity, vec![Kind::StakeStale], None).await
    }

    /// Payments sent.
    async fn payment_sent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(
            desc = "Only payments with an output to this identity (an i-address or a name)."
        )]
        identity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        subscribe(ctx, chain, identity, vec![Kind::PaymentSent], None).await
    }

    /// Every kind of event (or those in `kinds`). With `after`, first replays the stored events
    /// after that cursor, then goes on live, with no gap and no duplicate.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(
            desc = "The cursor of the last event already seen (`Event.cursor` or an edge cursor of the `events` query); `\"0\"` = from the first event; omitted = live events only."
        )]
        after: Option<String>,
        #[graphql(desc = "Only these kinds; omitted or empty = every kind.")] kinds: Option<
            Vec<EventKind>,
        >,
        #[graphql(desc = "Only events about this identity (an i-address or a name).")]
        identity: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let after = args::cursor(after.as_deref())?;
        let kinds = kinds
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        subscribe(ctx, chain, identity, kinds, after).await
    }
}
