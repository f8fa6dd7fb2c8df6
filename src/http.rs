//! HTTP routes: `POST /graphql`, GraphQL subscriptions over WebSocket on `GET /graphql`,
//! `/graphiql`, `/healthz`, `/metrics` and the dashboard at `/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use async_graphql::futures_util::StreamExt;
use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse};
use serde::Serialize;

use crate::graphql::AppSchema;
use crate::graphql::auth::RequestMeta;
use crate::graphql::responses::{self, CacheVersion};
use crate::graphql::{limits, websocket};
use crate::health::DaemonStatus;
use crate::state::AppState;
use crate::store;

/// Registers every route; `schema` and `state` are shared by all workers.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
) {
    let graphiql = state.config.http.graphiql;
    let dashboard = state
        .config
        .http
        .dashboard
        .then(|| state.config.http.dashboard_dir.clone());
    cfg.app_data(schema).app_data(state).service(
        web::resource("/graphql")
            .route(web::post().to(graphql))
            .route(
                web::get()
                    .guard(guard::Header("upgrade", "websocket"))
                    .to(websocket::upgrade),
            ),
    );
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/statements/{file}", web::get().to(statement_csv));
    if graphiql {
        cfg.route("/graphiql", web::get().to(graphiql_page));
    }
    if let Some(dir) = dashboard {
        crate::dashboard::configure(cfg, dir);
    }
}

/// CORS as `http.cors_allowed_origins` says: none (the default) adds no headers, so browsers
/// on other origins are refused; `"*"` allows any origin.
pub fn cors(
    http: &crate::config::HttpConfig,
) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers(["content-type", "authorization"])
        .max_age(3600);
    for origin in &http.cors_allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    actix_web::middleware::Condition::new(!http.cors_allowed_origins.is_empty(), cors)
}

/// A GraphQL-shaped error body with `extensions.code = INVALID_INPUT`.
fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": "INVALID_INPUT"}}]
    }))
}

/// `POST /graphql`: reads at most `http.max_body_bytes` (more is `413`), parses the JSON
/// (malformed is `400`), and runs the request or batch with the caller's token and address.
async fn graphql(
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
    http: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    let limit = state.config.http.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = http
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() > limit => return too_large(),
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the request body: {e}"),
                );
            }
        }
    }
    let body = body.freeze();
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body is not a GraphQL request: {e}; send JSON like {{\"query\": \"{{ pools {{ chain }} }}\"}}"
                ),
            );
        }
    };
    let max_batch = state.config.http.max_batch;
    if let BatchRequest::Batch(rs) = &batch
        && rs.len() > max_batch
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "a batch may hold at most {max_batch} operations (http.max_batch); this one holds {}: nothing was run",
                rs.len()
            ),
        );
    }
    // A block the pool is processing at the tip goes first (src/gate.rs).
    state.clients.yield_to_blocks().await;
    let bearer = http
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(websocket::bearer);
    let remote_addr = limits::client_ip(
        http.peer_addr().map(|a| a.ip()),
        http.headers(),
        &state.config.http.trusted_proxies,
    )
    .map(|ip| ip.to_string());
    // An anonymous single request may be answered with what the same body got under the
    // same version of the books and the daemon's state.
    let version = if bearer.is_none()
        && matches!(batch, BatchRequest::Single(_))
        && body.len() <= responses::MAX_KEY_BYTES
    {
        match CacheVersion::read(&state.db, &state.health, state.config.chains.len()).await {
            Ok(v) => v,
            Err(e) => {
                log::debug!("answers are not shared: cannot read the books' version: {e}");
                None
            }
        }
    } else {
        None
    };
    if let Some(v) = &version
        && let Some(answer) = state.responses.get(v, &body)
    {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(answer);
    }
    let shareable = Arc::new(AtomicBool::new(false));
    // One cost budget for the whole body: a batch's operations share it.
    let budget = limits::Budget::new(state.config.http.max_complexity);
    let with_meta = |request: async_graphql::Request| {
        let meta = RequestMeta {
            bearer: bearer.clone(),
            remote_addr: remote_addr.clone(),
            operation_name: request.operation_name.clone(),
            shareable: Arc::clone(&shareable),
        };
        request.data(meta).data(budget.clone())
    };
    let batch = match batch {
        BatchRequest::Single(r) => BatchRequest::Single(with_meta(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(with_meta).collect()),
    };
    // A turn among http.max_concurrent_requests: what waits holds only its parsed body.
    let Some(turn) = state.clients.execution().await else {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "5"))
            .json(serde_json::json!({
                "errors": [{
                    "message": format!(
                        "the API is busy: {} requests are running and this one waited {} s; try again shortly",
                        state.config.http.max_concurrent_requests,
                        state.clients.execution_wait().as_secs()
                    ),
                    "extensions": {"code": "UNAVAILABLE", "retryAfter": 5}
                }]
            }));
    };
    // The request's fields share the turn: one waiting for the daemon steps aside.
    let batch = match batch {
        BatchRequest::Single(r) => BatchRequest::Single(r.data(Arc::clone(&turn))),
        BatchRequest::Batch(rs) => {
            BatchRequest::Batch(rs.into_iter().map(|r| r.data(Arc::clone(&turn))).collect())
        }
    };
    let started = std::time::Instant::now();
    let response: BatchResponse = schema.execute_batch(batch).await;
    state
        .metrics
        .observe_graphql(started.elapsed().as_secs_f64());
    match serde_json::to_vec(&response) {
        Ok(json) => {
            let json = Bytes::from(json);
            if let (Some(v), BatchResponse::Single(r)) = (version, &response)
                && r.is_ok()
                && shareable.load(Ordering::Relaxed)
            {
                state.responses.put(v, body, json.clone());
            }
            HttpResponse::Ok()
                .content_type("application/json")
                .body(json)
        }
        Err(e) => {
            log::error!("cannot serialise a GraphQL response: {e}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn graphiql_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
}

/// The body of `/healthz`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// `ok` when the database and every daemon answer and the pool follows every chain;
    /// `degraded` (still HTTP 200) when a daemon is behind the pool (it reindexes or is a
    /// fail-over node still syncing: the pool waits for it); else `unavailable`.
    pub status: &'static str,
    /// The database.
    pub database: DatabaseHealth,
    /// Each configured chain.
    pub chains: Vec<ChainHealth>,
}

/// The database's part of `/healthz`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseHealth {
    /// Whether it answered.
    pub up: bool,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: &'static str,
    /// Why not.
    pub reason: Option<String>,
}

/// One chain's part of `/healthz`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainHealth {
    /// Chain name.
    pub name: String,
    /// The daemon.
    pub daemon: DaemonStatus,
    /// The highest processed block, if any.
    pub processed_height: Option<i64>,
    /// How the pool follows the daemon: `following`, `behind` (with the daemon's tip and the
    /// processed height) or `stopped` (a reorganisation deeper than the limit, with the reason).
    pub sync: crate::health::SyncStatus,
}

/// Checks the database now and reads the daemons' last known state.
pub async fn health_report(state: &AppState) -> HealthReport {
    let db = store::ping(&state.db).await;
    state.metrics.set_database_up(db.is_ok());
    let mut chains = Vec::new();
    for chain in &state.config.chains {
        let processed = match &db {
            Ok(()) => store::chain::tip(&state.db, &chain.name)
                .await
                .ok()
                .flatten()
                .map(|b| b.height),
            Err(_) => None,
        };
        if let Some(h) = processed {
            state.metrics.set_processed_height(&chain.name, h);
        }
        chains.push(ChainHealth {
            name: chain.name.clone(),
            daemon: state.health.daemon(&chain.name),
            processed_height: processed,
            sync: state.health.sync(&chain.name),
        });
    }
    use crate::health::SyncStatus;
    let all_up = db.is_ok()
        && chains.iter().all(|c| {
            c.daemon.up
                && c.daemon.refused.is_none()
                && !matches!(c.sync, SyncStatus::Stopped { .. })
        });
    let behind = chains
        .iter()
        .any(|c| matches!(c.sync, SyncStatus::Behind { .. }));
    HealthReport {
        status: match (all_up, behind) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ok",
        },
        database: DatabaseHealth {
            up: db.is_ok(),
            backend: state.config.database.url.backend(),
            reason: db.err().map(|e| format!("database unreachable: {e}")),
        },
        chains,
    }
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let report = health_report(&state).await;
    if report.status != "unavailable" {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// Reads the books of every chain into the metrics (at each scrape).
/// Blocks the luck metrics look back over (about a day on VRSC).
const LUCK_WINDOW: i64 = 1440;

async fn refresh_books(state: &AppState) -> Result<(), store::StoreError> {
    for chain in &state.config.chains {
        let name = chain.name.as_str();
        let supply = store::stats::latest(&state.db, name)
            .await?
            .map(|s| s.staking_supply.0);
        let totals = store::ledger::pool_totals(&state.db, name).await?;
        let liabilities = totals
            .pending_total
            .0
            .saturating_add(totals.in_flight_total.0);
        let payments = store::payments::count_by_status(&state.db, name).await?;
        let stakes = store::stakes::count_by_status(&state.db, name).await?;
        let processed = store::chain::processed_height(&state.db, name).await?;
        let (expected, found) =
            store::stats::luck(&state.db, name, processed - LUCK_WINDOW + 1, processed).await?;
        state.metrics.set_luck(name, expected, found);
        let held = store::settings::payout_state(&state.db, name).await?;
        state
            .metrics
            .set_payouts_held(name, held.paused, held.check_failure.is_some());
        state
            .metrics
            .set_books(name, supply, liabilities, &payments, &stakes);
    }
    Ok(())
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Refreshes the database and processed-height gauges, and the books.
    health_report(&state).await;
    if let Err(e) = refresh_books(&state).await {
        log::warn!("metrics: cannot read the books: {e}");
    }
    match state.metrics.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => {
            log::error!("cannot encode metrics: {e}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The query of `GET /statements/<identity>.csv`.
#[derive(Debug, serde::Deserialize)]
struct StatementQuery {
    /// First height.
    from: Option<i64>,
    /// Last height.
    to: Option<i64>,
    /// The chain (name or i-address); omitted: the first configured.
    chain: Option<String>,
}

/// `GET /statements/<identity>.csv?from=<height>&to=<height>`: a subscriber's statement as
/// RFC 4180 CSV (see [`store::statements::to_csv`]); an unknown subscriber is 404, a malformed
/// identity or range 400.
async fn statement_csv(
    state: web::Data<AppState>,
    file: web::Path<String>,
    query: Result<web::Query<StatementQuery>, actix_web::Error>,
) -> HttpResponse {
    let text = |status: StatusCode, body: String| {
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(body)
    };
    let Ok(web::Query(query)) = query else {
        return text(
            StatusCode::BAD_REQUEST,
            "from and to are block heights: /statements/<identity>.csv?from=<height>&to=<height>"
                .into(),
        );
    };
    let Some(identity) = file.strip_suffix(".csv") else {
        return text(
            StatusCode::NOT_FOUND,
            "statements are at /statements/<identity>.csv".into(),
        );
    };
    state.clients.yield_to_blocks().await;
    let Some(chain) = state.resolve_chain(query.chain.as_deref()).await else {
        return text(StatusCode::NOT_FOUND, "no such chain is configured".into());
    };
    let arg = match crate::graphql::args::IdentityArg::parse(identity, &chain.name) {
        Ok(arg) => arg,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.message),
    };
    let subscriber = match crate::graphql::args::find_subscriber(&state, &chain.name, &arg).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("{identity} is not a subscriber of {}", chain.name),
            );
        }
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, e.message),
    };
    let statement = match store::statements::of(
        &state.db,
        &chain.name,
        &subscriber.identity_address,
        query.from,
        query.to,
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return text(StatusCode::BAD_REQUEST, why),
        Err(e) => {
            log::error!("statement of {identity}: {e}");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer".into(),
            );
        }
    };
    match store::statements::to_csv(&statement) {
        Ok(csv) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8; header=present")
            .insert_header((
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{}-statement.csv\"",
                    subscriber.identity_address
                ),
            ))
            .body(csv),
        Err(e) => {
            log::error!("statement of {identity}: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}
