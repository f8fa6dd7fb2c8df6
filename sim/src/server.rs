//! Serving the simulated node: JSON-RPC 1.0 over HTTP with Basic auth (single and batch
//! requests), ZMQ `hashblock` on a PUB socket, the async-operation worker, and an optional
//! block timer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::amount::render;
use crate::chain::{Chain, Params, SimError};
use crate::node::{Node, Reply};

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to serve JSON-RPC (port 0: any free port).
    pub rpc_bind: SocketAddr,
    /// Where to publish ZMQ `hashblock` (`tcp://127.0.0.1:*` for any free port); `None`: not at all.
    pub zmq_bind: Option<String>,
    /// RPC user.
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    /// Mine a block this often (simulated chain time still advances 60 s a block).
    pub block_interval: Option<Duration>,
    /// Chain parameters.
    pub params: Params,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rpc_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            zmq_bind: Some("tcp://127.0.0.1:*".to_owned()),
            rpc_user: "user".to_owned(),
            rpc_password: "pass".to_owned(),
            block_interval: None,
            params: Params::default(),
        }
    }
}

type Outbox = Option<mpsc::Sender<(String, u32)>>;

struct Shared {
    node: Mutex<Node>,
    outbox: Mutex<Outbox>,
    auth: String,
    /// HTTP requests served (a batch is one).
    requests: std::sync::atomic::AtomicU64,
    /// JSON-RPC calls answered (each call of a batch counts).
    calls: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Runs `f` on the node, then publishes the tips it announced.
    fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let (result, notes) = match self.node.lock() {
            Ok(mut node) => {
                let r = f(&mut node);
                (r, node.take_notifications())
            }
            Err(poisoned) => {
                let mut node = poisoned.into_inner();
                let r = f(&mut node);
                (r, node.take_notifications())
            }
        };
        if let Ok(outbox) = self.outbox.lock()
            && let Some(tx) = outbox.as_ref()
        {
            for n in notes {
                let _ = tx.send(n);
            }
        }
        result
    }
}

/// A running simulator.
pub struct Simulator {
    /// `http://127.0.0.1:PORT`.
    pub rpc_url: String,
    /// `tcp://127.0.0.1:PORT`, when ZMQ is on.
    pub zmq_url: Option<String>,
    /// RPC user.
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

#[derive(Deserialize)]
struct RequestObject {
    method: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    #[serde(default)]
    id: Value,
}

/// Standard base64 (for the Basic auth header).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

fn envelope(id: &Value, reply: Result<Value, SimError>) -> Value {
    match reply {
        Ok(result) => json!({"result": result, "error": null, "id": id}),
        Err(e) => {
            json!({"result": null, "error": {"code": e.code, "message": e.message}, "id": id})
        }
    }
}

fn handle_one(shared: &Shared, req: RequestObject) -> (u16, Result<Value, String>) {
    shared
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let params: Vec<Box<RawValue>> = match req.params {
        None => Vec::new(),
        Some(raw) => match serde_json::from_str(raw.get()) {
            Ok(p) => p,
            Err(_) => {
                let e = SimError::new(-32600, "Params must be an array");
                return (400, Ok(envelope(&req.id, Err(e))));
            }
        },
    };
    match shared.with_node(|node| node.handle(&req.method, &params)) {
        Reply::Ok(v) => (200, Ok(envelope(&req.id, Ok(v)))),
        Reply::Err(status, e) => (status, Ok(envelope(&req.id, Err(e)))),
        Reply::Malformed(body) => (200, Err(body)),
    }
}

async fn rpc(req: HttpRequest, body: web::Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let authorised = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(shared.auth.as_str());
    if !authorised {
        // As verusd: 401, an empty body and a Basic challenge.
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"jsonrpc\""))
            .finish();
    }
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = String::from_utf8_lossy(&body);
    let json_reply = |status: u16, v: &Value| {
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::OK),
        )
        .content_type("application/json")
        .body(render(v) + "\n")
    };
    if text.trim_start().starts_with('[') {
        let Ok(batch) = serde_json::from_str::<Vec<RequestObject>>(&text) else {
            return json_reply(
                500,
                &envelope(&Value::Null, Err(SimError::new(-32700, "Parse error"))),
            );
        };
        let delay = shared.with_node(|n| {
            batch
                .iter()
                .map(|r| n.delay(&r.method))
                .max()
                .unwrap_or_default()
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let replies: Vec<Value> = batch
            .into_iter()
            .map(|r| {
                let id = r.id.clone();
                match handle_one(&shared, r) {
                    (_, Ok(v)) => v,
                    (_, Err(_)) => envelope(&id, Err(SimError::new(-32603, "Internal error"))),
                }
            })
            .collect();
        return json_reply(200, &Value::Array(replies));
    }
    let Ok(request) = serde_json::from_str::<RequestObject>(&text) else {
        return json_reply(
            500,
            &envelope(&Value::Null, Err(SimError::new(-32700, "Parse error"))),
        );
    };
    let delay = shared.with_node(|n| n.delay(&request.method));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match handle_one(&shared, request) {
        (status, Ok(v)) => json_reply(status, &v),
        (_, Err(body)) => HttpResponse::Ok().content_type("text/html").body(body),
    }
}

fn start_publisher(bind: &str) -> Result<(String, mpsc::Sender<(String, u32)>), String> {
    let context = zmq::Context::new();
    let socket = context
        .socket(zmq::PUB)
        .map_err(|e| format!("zmq socket: {e}"))?;
    socket
        .bind(bind)
        .map_err(|e| format!("zmq bind {bind}: {e}"))?;
    let endpoint = socket
        .get_last_endpoint()
        .map_err(|e| format!("zmq endpoint: {e}"))?
        .map_err(|_| "zmq endpoint is not UTF-8".to_owned())?;
    let (tx, rx) = mpsc::channel::<(String, u32)>();
    std::thread::Builder::new()
        .name("verusd-sim-zmq".into())
        .spawn(move || {
            let _context = context;
            for (hash, seq) in rx {
                let body: Vec<u8> = (0..hash.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).ok())
                    .collect();
                let frames: [&[u8]; 3] = [b"hashblock", &body, &seq.to_le_bytes()];
                if let Err(e) = socket.send_multipart(frames, 0) {
                    log::warn!("verusd-sim: zmq send failed: {e}");
                }
            }
        })
        .map_err(|e| format!("zmq thread: {e}"))?;
    Ok((endpoint, tx))
}

impl Simulator {
    /// Starts serving (inside an actix system).
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_with(config, Chain::new).await
    }

    /// Starts with a chain built by `build` (e.g. with pre-mined history).
    pub async fn start_with(
        config: SimConfig,
        build: impl FnOnce(Params) -> Chain,
    ) -> std::io::Result<Simulator> {
        let (zmq_url, outbox) = match &config.zmq_bind {
            Some(bind) => {
                let (url, tx) = start_publisher(bind).map_err(std::io::Error::other)?;
                (Some(url), Some(tx))
            }
            None => (None, None),
        };
        let mut node = Node::new(build(config.params.clone()));
        // Pre-built history is not announced, and the ZMQ sequence starts at 0.
        node.chain.take_announcements();
        let shared = Arc::new(Shared {
            node: Mutex::new(node),
            outbox: Mutex::new(outbox),
            auth: format!(
                "Basic {}",
                base64(format!("{}:{}", config.rpc_user, config.rpc_password).as_bytes())
            ),
            requests: std::sync::atomic::AtomicU64::new(0),
            calls: std::sync::atomic::AtomicU64::new(0),
        });
        let data = web::Data::new(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 << 20))
                .route("/", web::post().to(rpc))
        })
        // As many requests at once as verusd serves by default: `-rpcthreads` defaults to
        // 4 (`DEFAULT_HTTP_THREADS` in the httpserver.h that verusd inherits from Zcash and
        // Bitcoin). A pool that keeps all of them busy with its API clients' calls makes its
        // own `getblock` wait.
        .workers(4)
        .disable_signals()
        .bind(config.rpc_bind)?;
        let rpc_url = format!(
            "http://{}",
            server.addrs().first().copied().unwrap_or(config.rpc_bind)
        );
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);

        // The daemon's async worker: executes sendcurrency operations shortly after submission.
        let worker = Arc::clone(&shared);
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                worker.with_node(Node::run_ops);
            }
        });
        if let Some(interval) = config.block_interval {
            let timer = Arc::clone(&shared);
            actix_web::rt::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    timer.with_node(Node::auto_block);
                }
            });
        }
        Ok(Simulator {
            rpc_url,
            zmq_url,
            rpc_user: config.rpc_user,
            rpc_password: config.rpc_password,
            shared,
            handle,
        })
    }

    /// HTTP requests and JSON-RPC calls served so far over the network (a batch is one
    /// request and many calls); control calls made in-process through [`Simulator::call`]
    /// are not counted.
    pub fn rpc_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.shared.requests.load(Relaxed),
            self.shared.calls.load(Relaxed),
        )
    }

    /// Runs `f` on the node (tests script state directly), then publishes new tips.
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        self.shared.with_node(f)
    }

    /// Calls a method in-process, as if over RPC.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, SimError> {
        let raw: Vec<Box<RawValue>> = match params {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| serde_json::value::to_raw_value(v).ok())
                .collect(),
            Value::Null => Vec::new(),
            other => serde_json::value::to_raw_value(&other)
                .into_iter()
                .collect(),
        };
        match self.with_node(|n| n.handle(method, &raw)) {
            Reply::Ok(v) => Ok(serde_json::from_str(&render(&v)).unwrap_or(v)),
            Reply::Err(_, e) => Err(e),
            Reply::Malformed(body) => Err(SimError::new(-32700, body)),
        }
    }

    /// Stops serving and publishing.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
        if let Ok(mut outbox) = self.shared.outbox.lock() {
            outbox.take();
        }
    }
}
