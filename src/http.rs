//! HTTP routes: `POST /graphql`, GraphQL subscriptions over WebSocket on `GET /graphql`,
//! `/graphiql`, `/healthz` and `/metrics`.

use actix_web::{HttpRequest, HttpResponse, guard, web};
use async_graphql::http::GraphiQLSource;
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse, GraphQLSubscription};
use serde::Serialize;

use crate::graphql::AppSchema;
use crate::graphql::auth::RequestMeta;
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
    cfg.app_data(schema).app_data(state).service(
        web::resource("/graphql")
            .route(web::post().to(graphql))
            .route(
                web::get()
                    .guard(guard::Header("upgrade", "websocket"))
                    .to(graphql_ws),
            ),
    );
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
    if graphiql {
        cfg.route("/graphiql", web::get().to(graphiql_page));
    }
}

async fn graphql(
    schema: web::Data<AppSchema>,
    http: HttpRequest,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let bearer = http
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_owned()));
    let remote_addr = http.peer_addr().map(|a| a.ip().to_string());
    schema
        .execute(request.into_inner().data(RequestMeta {
            bearer,
            remote_addr,
        }))
        .await
        .into()
}

async fn graphql_ws(
    schema: web::Data<AppSchema>,
    request: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    GraphQLSubscription::new(AppSchema::clone(&schema)).start(&request, payload)
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
    /// `ok` when the database and every daemon answer, else `unavailable`.
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
        });
    }
    let all_up = db.is_ok()
        && chains
            .iter()
            .all(|c| c.daemon.up && c.daemon.refused.is_none());
    HealthReport {
        status: if all_up { "ok" } else { "unavailable" },
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
    if report.status == "ok" {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Refreshes the database and processed-height gauges.
    health_report(&state).await;
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
