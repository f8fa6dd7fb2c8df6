//! GraphQL over WebSocket on `GET /graphql`: both `graphql-transport-ws` (the `graphql-ws` JS
//! library) and the legacy `graphql-ws` (Apollo `subscriptions-transport-ws`), chosen by the
//! `Sec-WebSocket-Protocol` header. async-graphql speaks the protocols; this module moves the
//! frames with bounded buffers:
//!
//! - outgoing messages go through actix-ws's bounded channel; while a client does not read,
//!   its connection task waits and stops pulling from its subscriptions, so the Notifier's
//!   feed (which never waits) leaves it behind and the subscription ends with `LAGGED`; a
//!   client that reads nothing for [`SEND_TIMEOUT`] is disconnected;
//! - incoming messages go through a small bounded queue; a client that floods it is
//!   disconnected;
//! - keep-alive: a WebSocket ping every [`KEEPALIVE`] (a client silent for three of them is
//!   disconnected) and, on the legacy protocol, its `{"type":"ka"}` message.
//!
//! - limits: at most `http.max_ws_connections_per_address` open connections per client
//!   address (more: HTTP 429 before the upgrade) and `http.max_subscriptions_per_connection`
//!   subscriptions running on one connection (one more gets an `error` message with
//!   `RATE_LIMITED` for its id; the others go on).
//!
//! The admin token may come in the `Authorization` header of the upgrade request or in the
//! `connection_init` payload as `{"Authorization": "Bearer …"}`.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason, Session};
use async_graphql::Data;
use async_graphql::futures_util::StreamExt;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::graphql::AppSchema;
use crate::graphql::auth::RequestMeta;
use crate::graphql::limits::{self, WsSlot};
use crate::state::AppState;

/// Between two keep-alive pings.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
/// How long one outgoing message may wait for a client that does not read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Client messages waiting to be handled before the client counts as flooding.
const INCOMING_QUEUE: usize = 64;
/// The largest client message (a subscription document with its variables).
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The bearer token of an `Authorization` value.
pub fn bearer(value: &str) -> Option<String> {
    value
        .trim()
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Upgrades `GET /graphql` to a GraphQL WebSocket connection.
pub async fn upgrade(
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let http = &state.config.http;
    let client = limits::client_ip(
        request.peer_addr().map(|a| a.ip()),
        request.headers(),
        &http.trusted_proxies,
    );
    let slot = match client {
        Some(ip) => match state.clients.open_ws(ip) {
            Some(slot) => Some(slot),
            None => {
                log::info!("websocket from {ip} refused: over http.max_ws_connections_per_address");
                return Ok(HttpResponse::TooManyRequests()
                    .insert_header(("retry-after", "60"))
                    .json(serde_json::json!({
                        "errors": [{
                            "message": format!(
                                "at most {} WebSocket connections per address are open at once; close one first",
                                http.max_ws_connections_per_address
                            ),
                            "extensions": {"code": "RATE_LIMITED", "retryAfter": 60}
                        }]
                    })));
            }
        },
        None => None,
    };
    let protocol = request
        .headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok());
    let Some(protocol) = protocol else {
        return Ok(HttpResponse::BadRequest().json(serde_json::json!({
            "errors": [{
                "message": "send Sec-WebSocket-Protocol: graphql-transport-ws (or the legacy graphql-ws)",
                "extensions": {"code": "INVALID_INPUT"}
            }]
        })));
    };
    let (response, session, messages) =
        actix_ws::handle_with_protocols(&request, body, &[protocol.sec_websocket_protocol()])?;
    let meta = RequestMeta {
        bearer: request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer),
        remote_addr: client.map(|ip| ip.to_string()),
        operation_name: None,
        shareable: Default::default(),
    };
    let messages = messages
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    let connection = Connection {
        protocol,
        meta,
        max_subscriptions: http.max_subscriptions_per_connection,
        _slot: slot,
    };
    actix_web::rt::spawn(serve(
        AppSchema::clone(&schema),
        connection,
        session,
        messages,
    ));
    Ok(response)
}

/// The connection's data after `connection_init`: the request's, with the payload's token if
/// it carries one.
fn init_data(mut meta: RequestMeta, payload: &serde_json::Value) -> Data {
    let token = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(k).and_then(|v| v.as_str()))
        .and_then(bearer);
    if token.is_some() {
        meta.bearer = token;
    }
    let mut data = Data::default();
    data.insert(meta);
    data
}

/// One accepted connection.
struct Connection {
    protocol: WebSocketProtocols,
    meta: RequestMeta,
    max_subscriptions: usize,
    /// Its address's slot, given back when the connection ends.
    _slot: Option<WsSlot>,
}

/// The subscriptions a connection runs, counted from the protocol's messages: a client's
/// `subscribe` (`start` on the legacy protocol) opens one, the client's `complete` (`stop`)
/// or the server's `complete` or `error` for its id ends it.
#[derive(Default)]
struct Running(HashSet<String>);

impl Running {
    /// What a client message does: `Err(id)` when it would open one subscription too many.
    fn client(&mut self, bytes: &[u8], max: usize) -> Result<(), String> {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Ok(());
        };
        let id = message["id"].as_str().map(str::to_owned);
        match (message["type"].as_str(), id) {
            (Some("subscribe" | "start"), Some(id)) => {
                if !self.0.contains(&id) && self.0.len() >= max {
                    return Err(id);
                }
                self.0.insert(id);
            }
            (Some("complete" | "stop"), Some(id)) => {
                self.0.remove(&id);
            }
            _ => {}
        }
        Ok(())
    }

    /// What a server message does.
    fn server(&mut self, text: &str) {
        if let Ok(message) = serde_json::from_str::<serde_json::Value>(text)
            && matches!(message["type"].as_str(), Some("complete" | "error"))
            && let Some(id) = message["id"].as_str()
        {
            self.0.remove(id);
        }
    }
}

/// The protocol's error message refusing subscription `id`.
fn refused_subscription(legacy: bool, id: &str, max: usize) -> String {
    let error = serde_json::json!({
        "message": format!("at most {max} subscriptions run at once on one connection; complete one first"),
        "extensions": {"code": "RATE_LIMITED"}
    });
    let payload = if legacy {
        error
    } else {
        serde_json::json!([error])
    };
    serde_json::json!({"type": "error", "id": id, "payload": payload}).to_string()
}

/// Moves frames between the client and async-graphql until either side ends.
async fn serve(
    schema: AppSchema,
    connection: Connection,
    mut session: Session,
    mut messages: actix_ws::AggregatedMessageStream,
) {
    let Connection {
        protocol,
        meta,
        max_subscriptions,
        _slot,
    } = connection;
    let mut running = Running::default();
    let (incoming, queue) = mpsc::channel::<Vec<u8>>(INCOMING_QUEUE);
    let mut graphql = WebSocket::new(schema, ReceiverStream::new(queue), protocol)
        .on_connection_init(move |payload| async move { Ok(init_data(meta, &payload)) });
    let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
    let mut acknowledged = false;
    let mut last_heard = Instant::now();
    let mut ticker = tokio::time::interval(KEEPALIVE);
    ticker.tick().await;
    let close: Option<CloseReason> = loop {
        tokio::select! {
            message = messages.next() => {
                last_heard = Instant::now();
                let bytes = match message {
                    Some(Ok(AggregatedMessage::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(AggregatedMessage::Ping(payload))) => {
                        if session.pong(&payload).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        log::debug!("websocket protocol error: {e}");
                        break None;
                    }
                };
                if let Err(id) = running.client(&bytes, max_subscriptions) {
                    let refusal = refused_subscription(legacy, &id, max_subscriptions);
                    if session.text(refusal).await.is_err() {
                        break None;
                    }
                    continue;
                }
                if incoming.try_send(bytes).is_err() {
                    break Some(CloseReason {
                        code: actix_ws::CloseCode::Policy,
                        description: Some("too many messages at once".into()),
                    });
                }
            }
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => {
                    acknowledged |= text.contains("\"connection_ack\"");
                    running.server(&text);
                    match tokio::time::timeout(SEND_TIMEOUT, session.text(text)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => {
                            log::info!("websocket client read nothing for {SEND_TIMEOUT:?}; disconnected");
                            break Some(CloseReason {
                                code: actix_ws::CloseCode::Policy,
                                description: Some("the client does not read its messages".into()),
                            });
                        }
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some(CloseReason {
                    code: code.into(),
                    description: Some(reason),
                }),
                None => break None,
            },
            _ = ticker.tick() => {
                if last_heard.elapsed() > KEEPALIVE * 3 {
                    log::info!("websocket client silent for {:?}; disconnected", last_heard.elapsed());
                    break None;
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
                if legacy && acknowledged && session.text(r#"{"type":"ka"}"#).await.is_err() {
                    break None;
                }
            }
        }
    };
    let _ = session.close(close).await;
}
