//! Parsing of common arguments: `identity` and `chain`.

use async_graphql::{Context, Result};

use crate::config::ChainConfig;
use crate::domain::IdentityAddress;
use crate::graphql::error::{Code, api_error, rpc_error, store_error};
use crate::state::{AppState, ChainRuntime};

/// An identity argument: an i-address or a name ending in `@` (`alice@`, `alice.VRSC@`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityArg {
    /// An i-address.
    Address(String),
    /// A name: as given (for the daemon), and lower-cased with the chain's name appended
    /// when it has no parent (to look it up among stored names).
    Name {
        /// As the caller wrote it.
        given: String,
        /// `alice.vrsc@`.
        normalized: String,
    },
}

impl IdentityArg {
    /// Parses; malformed input is `INVALID_INPUT`.
    pub fn parse(text: &str, chain: &str) -> Result<IdentityArg> {
        let text = text.trim();
        if text.starts_with('i') && !text.contains('@') {
            return IdentityAddress::parse(text)
                .map(|a| IdentityArg::Address(a.as_str().to_owned()))
                .map_err(|e| api_error(Code::InvalidInput, e.to_string()));
        }
        let Some(name) = text.strip_suffix('@') else {
            return Err(api_error(
                Code::InvalidInput,
                format!(
                    "{text:?} is not an identity: write an i-address or a name ending in @ (alice@)"
                ),
            ));
        };
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && !name.ends_with('.')
            && name
                .chars()
                .all(|c| !c.is_control() && !"\\/:*?\"<>|@".contains(c));
        if !valid {
            return Err(api_error(
                Code::InvalidInput,
                format!("{text:?} is not a valid identity name"),
            ));
        }
        let lower = name.to_lowercase();
        let normalized = if lower.contains('.') {
            format!("{lower}@")
        } else {
            format!("{lower}.{}@", chain.to_lowercase())
        };
        Ok(IdentityArg::Name {
            given: text.to_owned(),
            normalized,
        })
    }

    /// The form verusd accepts.
    pub fn for_daemon(&self) -> String {
        match self {
            IdentityArg::Address(a) | IdentityArg::Name { given: a, .. } => a.clone(),
        }
    }
}

/// The configured chain a `chain` argument names; an unknown chain is `NOT_FOUND`.
pub async fn chain<'a>(ctx: &'a Context<'_>, chain: Option<&str>) -> Result<&'a ChainConfig> {
    let state = ctx.data::<AppState>()?;
    state.resolve_chain(chain).await.ok_or_else(|| {
        api_error(
            Code::NotFound,
            format!("no chain {:?} is configured", chain.unwrap_or_default()),
        )
    })
}

/// The runtime of a chain; `UNAVAILABLE` when it is not running.
pub fn runtime<'a>(ctx: &'a Context<'_>, chain: &ChainConfig) -> Result<&'a ChainRuntime> {
    let state = ctx.data::<AppState>()?;
    state.chains.get(&chain.name).ok_or_else(|| {
        api_error(
            Code::Unavailable,
            format!("chain {} is not running; see /healthz", chain.name),
        )
    })
}

/// The chain's SubscriberRegistry when this instance leads the chain; else `UNAVAILABLE`
/// naming the leader.
pub fn registry(
    runtime: &ChainRuntime,
) -> Result<actix::Addr<crate::actors::subscriber_registry::SubscriberRegistry>> {
    runtime
        .leadership
        .actors()
        .map(|(registry, _)| registry)
        .map_err(|why| api_error(Code::Unavailable, why))
}

/// The chain's PayoutManager when this instance leads the chain; else `UNAVAILABLE` naming
/// the leader.
pub fn payouts(
    runtime: &ChainRuntime,
) -> Result<actix::Addr<crate::actors::payout_manager::PayoutManager>> {
    runtime
        .leadership
        .actors()
        .map(|(_, payouts)| payouts)
        .map_err(|why| api_error(Code::Unavailable, why))
}

/// The most items one page may ask for.
pub const MAX_PAGE: i32 = 500;

/// Checks a `first` argument.
pub fn page_size(first: i32) -> Result<u64> {
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(api_error(
            Code::InvalidInput,
            format!("first must be from 0 to {MAX_PAGE}"),
        ));
    }
    Ok(first as u64)
}

/// Reads a list cursor (a row id); anything else is `INVALID_INPUT`.
pub fn cursor(after: Option<&str>) -> Result<Option<i64>> {
    after
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| api_error(Code::InvalidInput, "after is not a cursor of this list"))
        })
        .transpose()
}

/// Sends `msg` to an actor and maps its failure (mailbox or actor error) to a client error.
pub async fn ask<A, M, T>(addr: &actix::Addr<A>, msg: M) -> Result<T>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message<Result = std::result::Result<T, crate::actors::ActorError>> + Send + 'static,
    T: Send + 'static,
{
    use crate::graphql::error::actor_error;
    addr.send(msg)
        .await
        .map_err(|e| actor_error(e.into()))?
        .map_err(actor_error)
}

/// An optional `identity` filter as an i-address: an address as given, a name through the
/// stored subscribers (`None` when no subscriber has it, which matches nothing).
pub async fn identity_filter(
    state: &AppState,
    chain: &str,
    identity: Option<&str>,
) -> Result<Option<String>> {
    let Some(text) = identity else {
        return Ok(None);
    };
    match IdentityArg::parse(text, chain)? {
        IdentityArg::Address(a) => Ok(Some(a)),
        name => Ok(find_subscriber(state, chain, &name)
            .await?
            .map(|s| s.identity_address)
            .or_else(|| Some(String::new()))),
    }
}

/// Looks a subscriber up by i-address or name.
pub async fn find_subscriber(
    state: &AppState,
    chain: &str,
    identity: &IdentityArg,
) -> Result<Option<crate::store::subscribers::Subscriber>> {
    match identity {
        IdentityArg::Address(a) => crate::store::subscribers::get(&state.db, chain, a)
            .await
            .map_err(store_error),
        IdentityArg::Name { normalized, .. } => {
            crate::store::subscribers::get_by_name(&state.db, chain, normalized)
                .await
                .map_err(store_error)
        }
    }
}

/// Runs `work`, which waits mostly for the daemon (or for an actor that does), with the
/// request's execution turn given back (`http.max_concurrent_requests`): a slow daemon then
/// holds one of `http.client_rpc_slots`, never every client's turn. The turn is taken back,
/// in line with other requests, before the request goes on.
pub async fn without_turn<T>(
    ctx: &Context<'_>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let turn = ctx.data_opt::<std::sync::Arc<crate::graphql::limits::Turn>>();
    if let Some(turn) = turn {
        turn.step_aside().await;
    }
    let done = work.await;
    if let Some(turn) = turn {
        turn.take().await?;
    }
    done
}

/// An identity as of the processed height, for a client: the daemon's answer and the version
/// the pool stored, if any. Its daemon call waits for a client slot (the chain follower's
/// never do); the slot is held until the returned permit is dropped.
pub async fn identity_now<'a>(
    state: &'a AppState,
    runtime: &ChainRuntime,
    chain: &ChainConfig,
    arg: &IdentityArg,
) -> Result<(
    tokio::sync::SemaphorePermit<'a>,
    crate::domain::Height,
    crate::daemon::types::IdentityReply,
    Option<crate::store::identities::IdentityVersion>,
)> {
    let slot = state.clients.daemon_call().await?;
    let at = crate::store::chain::processed_height(&state.db, &chain.name)
        .await
        .map_err(store_error)?;
    let reply = runtime
        .rpc
        .get_identity(&arg.for_daemon(), Some(at))
        .await
        .map_err(rpc_error)?;
    let stored =
        crate::store::identities::at(&state.db, &chain.name, &reply.identity.identityaddress, at)
            .await
            .map_err(store_error)?;
    Ok((slot, at, reply, stored))
}
