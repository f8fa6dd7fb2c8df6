//! Client-visible errors. Every error carries `extensions.code`, one of the stable codes of
//! API.md; internal details are logged here and never sent.

use async_graphql::{Error, ErrorExtensions};

use crate::store::StoreError;

/// The stable error codes of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The thing asked for does not exist.
    NotFound,
    /// The request is malformed or over a limit.
    InvalidInput,
    /// An admin operation without a token.
    Unauthenticated,
    /// An admin operation with a wrong token.
    Forbidden,
    /// The daemon or the database is down.
    Unavailable,
    /// A bug or an unexpected state; details are in the server log.
    Internal,
    /// A subscription fell too far behind and was ended; `extensions.resumeAfter` is the cursor
    /// to resume after with `events(after:)`.
    Lagged,
    /// Too many mutations from one address; try again in a minute.
    RateLimited,
}

impl Code {
    /// The spelling in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "NOT_FOUND",
            Code::InvalidInput => "INVALID_INPUT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
            Code::Lagged => "LAGGED",
            Code::RateLimited => "RATE_LIMITED",
        }
    }
}

/// An error with a code and a message for the client.
pub fn api_error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// A store failure: the database being down is `UNAVAILABLE`; anything else is `INTERNAL`.
/// Either way the details go to the log only.
pub fn store_error(err: StoreError) -> Error {
    match err {
        StoreError::Db(e) => {
            log::error!("database error while answering a query: {e}");
            api_error(
                Code::Unavailable,
                "the database is unavailable; try again shortly",
            )
        }
        StoreError::LeaseLost(e) | StoreError::Conflict(e) => {
            log::warn!("{e}");
            api_error(
                Code::Unavailable,
                "this instance no longer leads the chain; send the request to the leader",
            )
        }
        StoreError::Corrupt(e) => {
            log::error!("corrupt data while answering a query: {e}");
            api_error(
                Code::Internal,
                "internal error; the operator's log has the details",
            )
        }
    }
}

/// An actor's or the daemon's failure as a client error.
pub fn actor_error(err: crate::actors::ActorError) -> Error {
    use crate::actors::ActorError;
    use crate::daemon::rpc::RpcError;
    match err {
        ActorError::NotFound(m) | ActorError::Rpc(RpcError::NotFound { message: m, .. }) => {
            api_error(Code::NotFound, m)
        }
        ActorError::Invalid(m) => api_error(Code::InvalidInput, m),
        ActorError::Unavailable(m) => api_error(Code::Unavailable, m),
        ActorError::Store(e) => store_error(e),
        ActorError::Rpc(e) => rpc_error(e),
        ActorError::Mailbox(m) => {
            log::error!("actor unavailable: {m}");
            api_error(
                Code::Unavailable,
                "the pool is stopping or restarting; try again shortly",
            )
        }
    }
}

/// A daemon failure: the daemon being down is `UNAVAILABLE`.
pub fn rpc_error(err: crate::daemon::rpc::RpcError) -> Error {
    use crate::daemon::rpc::RpcError;
    match err {
        RpcError::NotFound { message, .. } => api_error(Code::NotFound, message),
        e @ (RpcError::Unreachable { .. }
        | RpcError::WarmingUp(_)
        | RpcError::Auth
        | RpcError::Forbidden
        | RpcError::Credentials(_)) => {
            log::warn!("daemon unavailable while answering a query: {e}");
            api_error(
                Code::Unavailable,
                "the daemon is unavailable; try again shortly",
            )
        }
        e => {
            log::error!("daemon error while answering a query: {e}");
            api_error(
                Code::Internal,
                "internal error; the operator's log has the details",
            )
        }
    }
}
