//! Request-wide rules, as an async-graphql extension, and what API clients may use at once.
//!
//! - **Codes.** Errors raised by the resolvers carry their code already (`error::api_error`).
//!   The others come from async-graphql itself before anything runs: a query that does not
//!   parse, fails validation or is deeper than [`MAX_DEPTH`], or has an argument or variable
//!   that does not coerce (a bad `Amount`, say). Those are the client's mistakes, so they get
//!   `INVALID_INPUT`.
//! - **Pages.** A `first` over the page limit anywhere in the document is refused before
//!   anything runs.
//! - **Cost.** Each field costs 1 plus what it selects; a list of `first` items costs
//!   `1 + first × (what each item selects)`, nested lists multiply. A request costlier than
//!   `http.max_complexity` is refused before anything runs, with its cost and the limit in the
//!   message; the operations of one batched `POST` share that budget ([`Budget`]).
//! - **Rate.** Each mutation field and each `checkIdentity` (they write, or call the daemon)
//!   counts against `http.mutation_rate_per_minute` per client address ([`client_ip`]);
//!   over it: `RATE_LIMITED` with `extensions.retryAfter` in seconds.
//! - **Slots** ([`ClientSlots`]): daemon calls made for clients, and WebSocket connections
//!   per address, are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextResolve,
    NextSubscribe, NextValidation, ResolveInfo,
};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::HttpConfig;
use crate::gate::BlockGate;
use crate::graphql::args::MAX_PAGE;
use crate::graphql::auth::RequestMeta;
use crate::graphql::error::{Code, api_error};

/// The deepest query accepted (the standard introspection query needs 13).
pub const MAX_DEPTH: usize = 16;
/// How long a client's daemon call waits for a free slot before `UNAVAILABLE`.
const DAEMON_SLOT_WAIT: Duration = Duration::from_secs(5);

/// Costly operations per client address and minute.
pub type CostlyLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// A limiter allowing `per_minute` costly operations per address and minute, in bursts of as
/// many (`None` for 0: no limit).
pub fn costly_limiter(per_minute: u32) -> Option<Arc<CostlyLimiter>> {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

/// The complexity budget of one `POST /graphql`: a batch's operations draw from one budget.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: usize,
    left: Arc<AtomicUsize>,
}

impl Budget {
    /// A budget of `limit`.
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            left: Arc::new(AtomicUsize::new(limit)),
        }
    }

    /// Takes `cost` from the budget, or returns what was left.
    fn take(&self, cost: usize) -> Result<(), usize> {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(cost)
            })
            .map(|_| ())
    }
}

/// What API clients may use at once: daemon calls made on their behalf (a small queue of
/// their own, so a flood of `checkIdentity` never delays the chain follower's calls, which
/// do not go through it), and WebSocket connections per address.
pub struct ClientSlots {
    gate: BlockGate,
    yield_to_blocks: Duration,
    daemon: tokio::sync::Semaphore,
    executions: Arc<tokio::sync::Semaphore>,
    execution_wait: Duration,
    ws: Mutex<HashMap<IpAddr, usize>>,
    max_ws: usize,
}

impl ClientSlots {
    /// Slots as `http` says; new work waits at `gate` while a block is processed.
    pub fn new(http: &HttpConfig, gate: BlockGate) -> ClientSlots {
        ClientSlots {
            gate,
            yield_to_blocks: Duration::from_millis(http.yield_to_blocks_ms),
            daemon: tokio::sync::Semaphore::new(http.client_rpc_slots),
            executions: Arc::new(tokio::sync::Semaphore::new(http.max_concurrent_requests)),
            execution_wait: Duration::from_secs(http.execution_wait_secs),
            ws: Mutex::new(HashMap::new()),
            max_ws: http.max_ws_connections_per_address,
        }
    }

    /// Lets a block the pool is processing at the tip finish first (at most
    /// `http.yield_to_blocks_ms`): every client's request calls this before it starts work.
    pub async fn yield_to_blocks(&self) {
        self.gate.pass(self.yield_to_blocks).await;
    }

    /// Whether the API's new work is waiting for a block now.
    pub fn yielding(&self) -> bool {
        self.gate.is_closed()
    }

    /// Waits (at most a few seconds) for a slot to call the daemon for a client; held until
    /// the permit is dropped. The call waits for a block being processed too: the daemon
    /// answers most calls under one lock, and the chain follower's next call must not queue
    /// behind clients' calls there.
    pub async fn daemon_call(&self) -> async_graphql::Result<tokio::sync::SemaphorePermit<'_>> {
        self.yield_to_blocks().await;
        match tokio::time::timeout(DAEMON_SLOT_WAIT, self.daemon.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(api_error(
                Code::Unavailable,
                "the daemon is busy with other clients' requests; try again in a few seconds",
            )),
        }
    }

    /// Waits (at most `http.execution_wait_secs`, in arrival order) for a turn to execute a
    /// GraphQL request; `None` when the wait ran out. The request gives the turn back when
    /// the last clone of it is dropped, and for as long as it waits for the daemon
    /// ([`Turn::step_aside`]).
    pub async fn execution(&self) -> Option<Arc<Turn>> {
        let permit = tokio::time::timeout(
            self.execution_wait,
            Arc::clone(&self.executions).acquire_owned(),
        )
        .await
        .ok()?
        .ok()?;
        Some(Arc::new(Turn {
            executions: Arc::clone(&self.executions),
            wait: self.execution_wait,
            permit: tokio::sync::Mutex::new(Some(permit)),
            held: AtomicBool::new(true),
        }))
    }

    /// How long a request waits for its turn (`http.execution_wait_secs`).
    pub fn execution_wait(&self) -> Duration {
        self.execution_wait
    }

    /// A WebSocket connection's slot for `ip`, or `None` when that address has as many open
    /// as allowed. The slot is given back when dropped.
    pub fn open_ws(self: &Arc<Self>, ip: IpAddr) -> Option<WsSlot> {
        let mut open = self.ws.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max_ws {
            return None;
        }
        *n += 1;
        Some(WsSlot {
            slots: Arc::clone(self),
            ip,
        })
    }
}

/// One open WebSocket connection of an address.
pub struct WsSlot {
    slots: Arc<ClientSlots>,
    ip: IpAddr,
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        let mut open = self.slots.ws.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A GraphQL request's turn among `http.max_concurrent_requests`, shared by its fields (the
/// request's data). A field that waits for the daemon steps aside, so that a slow daemon
/// does not stop every other client's request; the request's fields take the turn back, in
/// line with the requests waiting for one, before they compute again ([`Turn::take`], called
/// before every field by [`RequestRules`]).
pub struct Turn {
    executions: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    permit: tokio::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// Whether `permit` holds one (read without the lock before every field).
    held: AtomicBool,
}

impl Turn {
    /// Gives the turn back while the caller waits for something that is not this process's
    /// work (the daemon); [`Turn::take`] afterwards.
    pub async fn step_aside(&self) {
        let mut permit = self.permit.lock().await;
        self.held.store(false, Ordering::SeqCst);
        *permit = None;
    }

    /// Makes sure the request holds its turn, waiting for one (at most
    /// `http.execution_wait_secs`, in line with new requests) if it stepped aside.
    pub async fn take(&self) -> async_graphql::Result<()> {
        if self.held.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut permit = self.permit.lock().await;
        if permit.is_none() {
            let taken =
                tokio::time::timeout(self.wait, Arc::clone(&self.executions).acquire_owned()).await;
            match taken {
                Ok(Ok(p)) => *permit = Some(p),
                _ => {
                    return Err(api_error(
                        Code::Unavailable,
                        format!(
                            "the API is busy: this request waited {} s to go on after its daemon call; try again shortly",
                            self.wait.as_secs()
                        ),
                    ));
                }
            }
        }
        self.held.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// One address of a `Forwarded: for=` or `X-Forwarded-For` hop (`None`: not an address,
/// such as `unknown` or an obfuscated name).
fn hop_ip(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// The client's address: the peer's, unless the peer is one of `trusted` proxies; then the
/// last hop of `Forwarded` (`for=`), or else of `X-Forwarded-For`, that is not a trusted
/// proxy itself. A hop that is not an address leaves the proxy's.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::to_owned)
            .collect()
    };
    let forwarded: Vec<String> = values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| v.trim().to_owned())
            })
        })
        .collect();
    let hops = if forwarded.is_empty() {
        values("x-forwarded-for")
    } else {
        forwarded
    };
    for hop in hops.iter().rev() {
        match hop_ip(hop) {
            Some(ip) if trusted.contains(&ip) => continue,
            Some(ip) => return Some(ip),
            None => return Some(peer),
        }
    }
    Some(peer)
}

/// The extension; register it with `SchemaBuilder::extension`.
pub struct RequestRules {
    /// The limiter of costly operations, if there is a limit.
    pub limiter: Option<Arc<CostlyLimiter>>,
    /// `http.max_complexity`, for operations that come without a [`Budget`].
    pub max_complexity: usize,
    /// Where a request running while a block is processed waits before its next field.
    pub clients: Arc<ClientSlots>,
}

impl ExtensionFactory for RequestRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestRulesExtension {
            limiter: self.limiter.clone(),
            max_complexity: self.max_complexity,
            clients: Arc::clone(&self.clients),
        })
    }
}

struct RequestRulesExtension {
    limiter: Option<Arc<CostlyLimiter>>,
    max_complexity: usize,
    clients: Arc<ClientSlots>,
}

/// Requests seen, to drop the limiter's idle addresses now and then.
static SEEN: AtomicU64 = AtomicU64::new(0);

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

/// How many costly operations the operation that will run holds: each field of a mutation,
/// each `checkIdentity` of a query (top-level fields, through fragments).
fn costly_fields(doc: &ExecutableDocument, operation_name: Option<&str>) -> u32 {
    fn count(
        doc: &ExecutableDocument,
        set: &SelectionSet,
        mutation: bool,
        seen: &mut Vec<async_graphql::Name>,
    ) -> u32 {
        let mut n = 0u32;
        for item in &set.items {
            n = n.saturating_add(match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    u32::from(if mutation {
                        !name.starts_with("__")
                    } else {
                        name == "checkIdentity"
                    })
                }
                Selection::InlineFragment(f) => {
                    count(doc, &f.node.selection_set.node, mutation, seen)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    // A cycle is refused by validation later; it is not followed here.
                    if seen.contains(name) {
                        0
                    } else {
                        seen.push(name.clone());
                        let inner = doc.fragments.get(name).map_or(0, |f| {
                            count(doc, &f.node.selection_set.node, mutation, seen)
                        });
                        seen.pop();
                        inner
                    }
                }
            });
        }
        n
    }
    let wanted = operation_name.map(async_graphql::Name::new);
    doc.operations
        .iter()
        .filter(|(name, _)| match (&wanted, name) {
            (Some(w), Some(n)) => w == *n,
            _ => true,
        })
        .map(|(_, op)| {
            let mutation = match op.node.ty {
                OperationType::Mutation => true,
                OperationType::Query => false,
                OperationType::Subscription => return 0,
            };
            count(doc, &op.node.selection_set.node, mutation, &mut Vec::new())
        })
        .max()
        .unwrap_or(0)
}

/// Whether the answer to `doc` may be shared between clients: the operation it runs is a
/// query (not a mutation or subscription) and asks nothing rate-limited (no `checkIdentity`).
fn shareable(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let mut operations = doc.operations.iter();
    let op = match operation_name {
        Some(wanted) => operations.find(|(name, _)| name.is_some_and(|n| n.as_str() == wanted)),
        None => operations
            .next()
            .filter(|_| doc.operations.iter().count() == 1),
    };
    op.is_some_and(|(_, op)| op.node.ty == OperationType::Query)
        && costly_fields(doc, operation_name) == 0
}

/// `RATE_LIMITED`, retry after `wait`.
fn rate_limited(message: String, wait: Duration) -> ServerError {
    let mut error = ServerError::new(message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("retryAfter", Value::from(wait.as_secs().max(1)));
    add_code(&mut error, Code::RateLimited);
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestRulesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    /// A request already running when a block arrives lets it go first, field by field
    /// (src/gate.rs); an open gate costs one atomic read per field.
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        self.clients.yield_to_blocks().await;
        if let Some(turn) = ctx.data_opt::<Arc<Turn>>() {
            turn.take()
                .await
                .map_err(|e| e.into_server_error(async_graphql::Pos::default()))?;
        }
        next.run(ctx, info).await
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
        self.clients.yield_to_blocks().await;
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
        if let Some(meta) = ctx.data_opt::<RequestMeta>() {
            meta.shareable.store(
                shareable(&doc, meta.operation_name.as_deref()),
                Ordering::Relaxed,
            );
        }
        if let Some(limiter) = &self.limiter {
            if SEEN.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
                limiter.retain_recent();
            }
            let meta = ctx.data_opt::<RequestMeta>();
            let ip = meta
                .and_then(|m| m.remote_addr.as_deref())
                .and_then(|a| a.parse::<IpAddr>().ok());
            let operation_name = meta.and_then(|m| m.operation_name.as_deref());
            let costly = costly_fields(&doc, operation_name);
            if let (Some(ip), Some(n)) = (ip, NonZeroU32::new(costly)) {
                match limiter.check_key_n(&ip, n) {
                    Ok(Ok(())) => {}
                    Ok(Err(not_until)) => {
                        let wait = not_until.wait_time_from(limiter.clock().now());
                        log::info!(
                            "{costly} costly operations from {ip} refused: over http.mutation_rate_per_minute"
                        );
                        return Err(rate_limited(
                            format!(
                                "too many mutations and identity checks from this address; try again in {} s",
                                wait.as_secs().max(1)
                            ),
                            wait,
                        ));
                    }
                    Err(capacity) => {
                        return Err(rate_limited(
                            format!(
                                "this request holds {costly} mutations and identity checks; at most {} are allowed per minute",
                                capacity.0
                            ),
                            Duration::from_secs(60),
                        ));
                    }
                }
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        self.clients.yield_to_blocks().await;
        let result = next.run(ctx).await?;
        let cost = result.complexity;
        let refused = match ctx.data_opt::<Budget>() {
            Some(budget) => budget.take(cost).err().map(|left| {
                if left == budget.limit {
                    format!("this query costs {cost}; the limit is {}", budget.limit)
                } else {
                    format!(
                        "this operation costs {cost}; {left} of the batch's limit of {} is left",
                        budget.limit
                    )
                }
            }),
            None => (cost > self.max_complexity).then(|| {
                format!(
                    "this query costs {cost}; the limit is {}",
                    self.max_complexity
                )
            }),
        };
        match refused {
            Some(message) => {
                let mut error = ServerError::new(message, None);
                add_code(&mut error, Code::InvalidInput);
                Err(vec![error])
            }
            None => Ok(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            client_ip(Some(ip("198.51.100.2")), &forged, &[]),
            Some(ip("198.51.100.2"))
        );
        let proxy = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The last hop that is not a trusted proxy: the client's own claims to the left of
        // it are not believed.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &chain, &proxy),
            Some(ip("203.0.113.7"))
        );
        // Forwarded wins over X-Forwarded-For; quoted IPv6 with a port.
        let both = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
            ),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &both, &proxy),
            Some(ip("2001:db8::1"))
        );
        // A hop that is not an address (`unknown`) leaves the proxy's own.
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &unknown, &proxy),
            Some(ip("10.0.0.1"))
        );
        // No header at all from a proxy: the proxy.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &proxy),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn mutation_fields_and_identity_checks_are_counted_one_by_one() {
        let count = |q: &str, op: Option<&str>| {
            let doc = async_graphql::parser::parse_query(q).unwrap();
            costly_fields(&doc, op)
        };
        assert_eq!(
            count(
                "mutation { a: subscribe(identity: \"x@\") { eligible } b: subscribe(identity: \"y@\") { eligible } __typename }",
                None
            ),
            2
        );
        assert_eq!(
            count(
                "mutation M { ...F } fragment F on Mutation { a: subscribe(identity: \"x@\") { eligible } ... on Mutation { b: subscribe(identity: \"y@\") { eligible } } }",
                None
            ),
            2
        );
        assert_eq!(
            count(
                "{ checkIdentity(identity: \"x@\") { eligible } pools { chain } }",
                None
            ),
            1
        );
        assert_eq!(count("{ pools { chain } }", None), 0);
        assert_eq!(count("subscription { events { cursor } }", None), 0);
        // Only the operation that runs.
        let two = "query Q { pools { chain } } mutation M { a: subscribe(identity: \"x@\") { eligible } }";
        assert_eq!(count(two, Some("Q")), 0);
        assert_eq!(count(two, Some("M")), 1);
        // A fragment cycle (refused by validation later) is not followed forever.
        assert_eq!(
            count(
                "mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { ...A }",
                None
            ),
            0
        );
    }

    #[test]
    fn only_plain_queries_are_shared_between_clients() {
        let shared = |q: &str, op: Option<&str>| {
            let doc = async_graphql::parser::parse_query(q).unwrap();
            shareable(&doc, op)
        };
        assert!(shared("{ pool { tipHeight } }", None));
        assert!(shared("query Q { pools { chain } }", Some("Q")));
        assert!(!shared(
            "{ checkIdentity(identity: \"x@\") { eligible } }",
            None
        ));
        assert!(!shared(
            "query { ...F } fragment F on Query { checkIdentity(identity: \"x@\") { eligible } }",
            None
        ));
        assert!(!shared(
            "mutation { subscribe(identity: \"x@\") { eligible } }",
            None
        ));
        assert!(!shared("subscription { events { cursor } }", None));
        let two = "query Q { pools { chain } } mutation M { a: subscribe(identity: \"x@\") { eligible } }";
        assert!(shared(two, Some("Q")));
        assert!(!shared(two, Some("M")));
        // Two operations and no name: refused by async-graphql, never kept.
        assert!(!shared(two, None));
        assert!(!shared(two, Some("Nope")));
    }

    #[test]
    fn a_budget_is_shared_and_never_goes_below_zero() {
        let budget = Budget::new(100);
        let shared = budget.clone();
        assert_eq!(budget.take(33), Ok(()));
        assert_eq!(shared.take(67), Ok(()));
        assert_eq!(budget.take(1), Err(0));
    }
}
