//! Request-wide rules, as an async-graphql extension: every error leaves with an
//! `extensions.code`, and mutations are rate limited per client address.
//!
//! Errors raised by the resolvers carry their code already (`error::api_error`). The others
//! come from async-graphql itself before anything runs: a query that does not parse, fails
//! validation, is deeper than [`MAX_DEPTH`] or costlier than `http.max_complexity`, or has an
//! argument or variable that does not coerce (a bad `Amount`, say). Those are the client's
//! mistakes, so they get `INVALID_INPUT`. A `first` over the page limit anywhere in the
//! document is refused here too, before anything runs.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, Value, Variables};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::graphql::args::MAX_PAGE;
use crate::graphql::auth::RequestMeta;
use crate::graphql::error::Code;

/// The deepest query accepted (the standard introspection query needs 13).
pub const MAX_DEPTH: usize = 16;

/// Mutations per client address and minute.
pub type MutationLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// A limiter allowing `per_minute` mutations per address and minute (`None` for 0: no limit).
pub fn mutation_limiter(per_minute: u32) -> Option<Arc<MutationLimiter>> {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

/// The extension; register it with `SchemaBuilder::extension`.
pub struct RequestRules {
    /// The mutation limiter, if there is a limit.
    pub limiter: Option<Arc<MutationLimiter>>,
}

impl ExtensionFactory for RequestRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestRulesExtension {
            limiter: self.limiter.clone(),
        })
    }
}

struct RequestRulesExtension {
    limiter: Option<Arc<MutationLimiter>>,
}

/// Gives every error without a code `INVALID_INPUT` (see the module comment).
fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        add_code(error, Code::InvalidInput);
    }
    response
}

/// Sets `extensions.code` on an error that has none.
pub fn add_code(error: &mut ServerError, code: Code) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Value::from(code.as_str()));
    }
}

/// The largest `first` argument anywhere in the document (literal or variable), so that a page
/// over the limit is refused before anything runs.
fn largest_first(doc: &ExecutableDocument, variables: &Variables) -> Option<i64> {
    fn walk(set: &SelectionSet, variables: &Variables, max: &mut Option<i64>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    for (name, value) in &field.node.arguments {
                        if name.node.as_str() != "first" {
                            continue;
                        }
                        let resolved = value
                            .node
                            .clone()
                            .into_const_with(|v| variables.get(&v).cloned().ok_or(()));
                        let n = match resolved {
                            Ok(Value::Number(n)) => n.as_i64(),
                            _ => None,
                        };
                        if let Some(n) = n {
                            *max = Some(max.map_or(n, |m| m.max(n)));
                        }
                    }
                    walk(&field.node.selection_set.node, variables, max);
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node, variables, max),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut max = None;
    for (_, op) in doc.operations.iter() {
        walk(&op.node.selection_set.node, variables, &mut max);
    }
    for fragment in doc.fragments.values() {
        walk(&fragment.node.selection_set.node, variables, &mut max);
    }
    max
}

/// Whether the operation that will run is a mutation.
fn is_mutation(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let wanted = operation_name.map(async_graphql::Name::new);
    doc.operations.iter().any(|(name, op)| {
        op.node.ty == OperationType::Mutation
            && match (&wanted, name) {
                (Some(w), Some(n)) => w == n,
                _ => true,
            }
    })
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestRulesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(with_codes).boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(first) = largest_first(&doc, variables)
            && !(0..=i64::from(MAX_PAGE)).contains(&first)
        {
            let mut error = ServerError::new(
                format!("first must be from 0 to {MAX_PAGE}; {first} was asked"),
                None,
            );
            add_code(&mut error, Code::InvalidInput);
            return Err(error);
        }
        if let Some(limiter) = &self.limiter {
            let meta = ctx.data_opt::<RequestMeta>();
            let ip = meta
                .and_then(|m| m.remote_addr.as_deref())
                .and_then(|a| a.parse::<IpAddr>().ok());
            let operation_name = meta.and_then(|m| m.operation_name.as_deref());
            if let Some(ip) = ip
                && is_mutation(&doc, operation_name)
                && limiter.check_key(&ip).is_err()
            {
                log::warn!("mutation from {ip} refused: over http.mutation_rate_per_minute");
                let mut error = ServerError::new(
                    "too many mutations from this address; try again in a minute",
                    None,
                );
                add_code(&mut error, Code::RateLimited);
                return Err(error);
            }
        }
        Ok(doc)
    }
}
