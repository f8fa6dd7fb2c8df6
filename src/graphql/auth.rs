//! Admin authentication: `Authorization: Bearer <token>`, checked against the SHA-256 hashes
//! in the configuration in constant time. Every admin mutation is written to the audit log
//! (by the actor that makes the change, in the same transaction).

use async_graphql::{Context, Result};

use crate::config::TokenHash;
use crate::graphql::error::{Code, api_error};
use crate::state::AppState;
use crate::store::audit::AuditEntry;

/// What the HTTP layer learned about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The bearer token, if the request carried one.
    pub bearer: Option<String>,
    /// The peer's address.
    pub remote_addr: Option<String>,
    /// The operation the request names, if it names one.
    pub operation_name: Option<String>,
    /// Set once the request is parsed when its answer may be shared with other clients (see
    /// [`crate::graphql::responses`]): one query operation with no rate-limited field.
    pub shareable: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Equal in time independent of where the bytes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks the admin token and returns the audit entry for `mutation` with `arguments`.
/// No token: `UNAUTHENTICATED`; a wrong one: `FORBIDDEN`.
pub fn require_admin(
    ctx: &Context<'_>,
    mutation: &str,
    chain: &str,
    arguments: serde_json::Value,
) -> Result<AuditEntry> {
    let state = ctx.data::<AppState>()?;
    let meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    let Some(token) = meta.bearer.filter(|t| !t.is_empty()) else {
        return Err(api_error(
            Code::Unauthenticated,
            "this mutation needs an admin token: send Authorization: Bearer <token>",
        ));
    };
    let hash = TokenHash::of_token(&token);
    let mut ok = false;
    for allowed in &state.config.http.admin_token_sha256 {
        // No early exit: every configured hash is compared.
        ok |= constant_time_eq(hash.bytes(), allowed.bytes());
    }
    if !ok {
        log::warn!(
            "admin mutation {mutation} refused: wrong token (from {})",
            meta.remote_addr.as_deref().unwrap_or("?")
        );
        return Err(api_error(Code::Forbidden, "the admin token is not valid"));
    }
    Ok(AuditEntry {
        chain: Some(chain.to_owned()),
        token_prefix: hash.to_string()[..12].to_owned(),
        mutation: mutation.to_owned(),
        arguments: arguments.to_string(),
        remote_addr: meta.remote_addr,
    })
}
