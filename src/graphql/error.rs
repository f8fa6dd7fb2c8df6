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
        StoreError::Corrupt(e) => {
            log::error!("corrupt data while answering a query: {e}");
            api_error(
                Code::Internal,
                "internal error; the operator's log has the details",
            )
        }
    }
}
