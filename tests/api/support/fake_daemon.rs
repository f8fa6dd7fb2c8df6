//! A small scripted JSON-RPC 1.0 server for the RPC client's and the health probe's tests:
//! HTTP Basic auth, verusd's reply envelope, and replies a test chooses per method.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// The RPC user the fake daemon accepts.
pub const USER: &str = "rpcuser";
/// The RPC password the fake daemon accepts.
pub const PASSWORD: &str = "rpc-secret";

/// What the fake answers to one method.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `{"result": value, "error": null}` with HTTP 200.
    Result(serde_json::Value),
    /// `{"result": null, "error": {code, message}}` with the given HTTP status.
    Error(u16, i64, String),
    /// A raw body with the given status.
    Raw(u16, String),
}

/// A running fake daemon.
pub struct FakeDaemon {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeDaemon {
    /// Starts it on port 0 with `getblockcount` answering `tip`.
    pub async fn start(tip: u64) -> FakeDaemon {
        let replies = Arc::new(Mutex::new(HashMap::new()));
        replies
            .lock()
            .unwrap()
            .insert("getblockcount".to_owned(), Reply::Result(tip.into()));
        let shared = web::Data::new(Arc::clone(&replies));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/", web::post().to(handle))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the fake daemon");
        let url = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeDaemon {
            url,
            replies,
            handle,
        }
    }

    /// Sets what `method` answers from now on.
    pub fn set(&self, method: &str, reply: Reply) {
        self.replies
            .lock()
            .unwrap()
            .insert(method.to_owned(), reply);
    }

    /// Stops it.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn authorised(req: &HttpRequest) -> bool {
    use base64_engine::encode;
    let expected = format!("Basic {}", encode(format!("{USER}:{PASSWORD}").as_bytes()));
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    replies: web::Data<Arc<Mutex<HashMap<String, Reply>>>>,
) -> HttpResponse {
    if !authorised(&req) {
        // verusd: 401, empty body, a Basic challenge.
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"jsonrpc\""))
            .finish();
    }
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return HttpResponse::InternalServerError().json(serde_json::json!({"result": null, "error": {"code": -32700, "message": "Parse error"}, "id": null})),
    };
    let id = request["id"].clone();
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    let reply = replies.lock().unwrap().get(&method).cloned();
    match reply {
        Some(Reply::Result(v)) => HttpResponse::Ok().json(serde_json::json!({"result": v, "error": null, "id": id})),
        Some(Reply::Error(status, code, message)) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(serde_json::json!({"result": null, "error": {"code": code, "message": message}, "id": id})),
        Some(Reply::Raw(status, body)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(body)
        }
        None => HttpResponse::NotFound()
            .json(serde_json::json!({"result": null, "error": {"code": -32601, "message": "Method not found"}, "id": id})),
    }
}

/// Standard base64 for the Basic auth header (a few lines rather than a dependency).
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
