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
//! The admin token may come in the `Authorization` header of the upgrade request or in the
//! `connection_init` payload as `{"Authorization": "Bearer …"}`.

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
    request: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
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
        remote_addr: request.peer_addr().map(|a| a.ip().to_string()),
        operation_name: None,
    };
    let messages = messages
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    actix_web::rt::spawn(serve(
        AppSchema::clone(&schema),
        protocol,
        meta,
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

/// Moves frames between the client and async-graphql until either side ends.
async fn serve(
    schema: AppSchema,
    protocol: WebSocketProtocols,
    meta: RequestMeta,
    mut session: Session,
    mut messages: actix_ws::AggregatedMessageStream,
) {
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
