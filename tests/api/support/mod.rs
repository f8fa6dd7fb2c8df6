//! Test support: a fresh database per test on any backend, a scripted fake daemon, and
//! `spawn_app` on port 0.
//!
//! `TEST_DATABASE_URL` names a PostgreSQL or MySQL server (any database the user can connect
//! to, e.g. `postgres://coinstaker:coinstaker@127.0.0.1/coinstaker_test`); each test then
//! creates its own database there and drops it afterwards, so tests run in parallel. Without
//! it, tests use SQLite (in memory, or a temporary file where several connections are needed).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use coinstaker::config::{Config, DatabaseUrl};
use coinstaker::startup::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection};

pub mod clients;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The RPC user of test simulators.
pub const RPC_USER: &str = "rpcuser";
/// The RPC password of test simulators.
pub const RPC_PASSWORD: &str = "rpc-secret";

/// Starts a simulated verusd on free ports (RPC and ZMQ), with the test credentials.
pub async fn sim() -> verusd_sim::Simulator {
    sim_with(verusd_sim::Params::default()).await
}

/// As [`sim`], with chain parameters of the caller's.
pub async fn sim_with(params: verusd_sim::Params) -> verusd_sim::Simulator {
    let config = verusd_sim::SimConfig {
        rpc_user: RPC_USER.to_owned(),
        rpc_password: RPC_PASSWORD.to_owned(),
        params,
        ..verusd_sim::SimConfig::default()
    };
    verusd_sim::Simulator::start(config)
        .await
        .expect("the simulator starts")
}

/// A client for a simulator.
pub fn client(sim: &verusd_sim::Simulator) -> coinstaker::daemon::rpc::RpcClient {
    coinstaker::daemon::rpc::RpcClient::with_password(&sim.rpc_url, RPC_USER, RPC_PASSWORD)
        .expect("client")
}

/// A database created for one test.
pub struct TestDb {
    /// The URL the code under test connects to.
    pub url: String,
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("cstest_{}_{n}_{nanos}", std::process::id())
}

/// The server URL of `TEST_DATABASE_URL`, if set and not SQLite.
pub fn server_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty() && !u.starts_with("sqlite"))
}

/// `base` with its database path replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(a, q)| (a, Some(q)));
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    let path_start = without_query[scheme_end..]
        .find('/')
        .map_or(without_query.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &without_query[..path_start]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl TestDb {
    /// A fresh, empty database (no migrations applied). `file` asks for a SQLite file rather
    /// than memory, for code that opens several connections.
    pub async fn new(file: bool) -> TestDb {
        match server_url() {
            Some(base) => {
                let name = unique_name();
                let admin = coinstaker::store::connect_url(&base, 1)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                TestDb {
                    url: with_database(&base, &name),
                    server: Some((base, name)),
                    _dir: None,
                }
            }
            None if file => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                TestDb {
                    url,
                    server: None,
                    _dir: Some(dir),
                }
            }
            None => TestDb {
                url: "sqlite::memory:".to_owned(),
                server: None,
                _dir: None,
            },
        }
    }

    /// Connects (one connection for SQLite in memory).
    pub async fn connect(&self) -> DatabaseConnection {
        coinstaker::store::connect_url(&self.url, 4)
            .await
            .expect("connect to the test database")
    }

    /// Connects and applies the migrations.
    pub async fn migrated(&self) -> DatabaseConnection {
        let db = self.connect().await;
        coinstaker::store::migrate(&db)
            .await
            .expect("migrations apply");
        db
    }

    /// Which backend: `sqlite`, `postgres` or `mysql`.
    pub fn backend(&self) -> &'static str {
        DatabaseUrl::new(self.url.clone()).backend()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.server.take() else {
            return;
        };
        // Drop runs outside async code (and possibly during a panic): use a private runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = coinstaker::store::connect_url(&base, 1).await {
                    let sql = if base.starts_with("postgres") {
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    } else {
                        // MySQL has no FORCE: end the connections still open on the database
                        // (an application not stopped, a transaction left open), or the DROP
                        // waits for their metadata locks while blocking this test's thread.
                        let open = admin
                            .query_all_raw(sea_orm::Statement::from_string(
                                admin.get_database_backend(),
                                format!(
                                    "SELECT id FROM information_schema.processlist WHERE db = '{name}'"
                                ),
                            ))
                            .await
                            .unwrap_or_default();
                        for row in open {
                            if let Ok(id) = row.try_get_by_index::<u64>(0) {
                                let _ = admin.execute_unprepared(&format!("KILL {id}")).await;
                            }
                        }
                        format!("DROP DATABASE IF EXISTS {name}")
                    };
                    let _ = admin.execute_unprepared(&sql).await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// A config for tests: one chain `VRSC` whose daemon is at `rpc_url`, HTTP on port 0.
pub fn test_config(database_url: &str, rpc_url: &str) -> Config {
    let text = format!(
        r#"
[database]
url = "{database_url}"
max_connections = 4

[http]
bind = "127.0.0.1:0"

# A short lease: a test that restarts a pool after dropping it (no clean release) waits
# for it a renewal period (1 s), not 5 s.
[cluster]
lease_secs = 3

[[chain]]
name = "VRSC"
rpc_url = "{rpc_url}"
rpc_user = "{user}"
rpc_password = "{password}"
poll_interval_secs = 1
pool_identity = "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e"
pool_primary_address = "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK"
fee_percent = "3.33"
min_payout = "2.5"
"#,
        user = RPC_USER,
        password = RPC_PASSWORD,
    );
    Config::from_toml(&text, std::path::Path::new("test.toml"), Vec::new())
        .expect("test config is valid")
}

/// A running application and what it needs to stay alive.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The application's state (database, health).
    pub app_state: coinstaker::state::AppState,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The database behind it.
    pub db: TestDb,
    handle: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// POSTs a GraphQL query and returns the JSON reply.
    pub async fn graphql(&self, query: &str) -> serde_json::Value {
        post_graphql(&self.client, &self.address, query).await
    }

    /// GETs a path and returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    /// Stops the server and the actors (as Ctrl-C does).
    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        // Let the actors handle their Shutdown.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    /// POSTs a GraphQL query with an `Authorization: Bearer` token.
    pub async fn graphql_as(&self, token: &str, query: &str) -> serde_json::Value {
        send_graphql(
            self.client
                .post(format!("{}/graphql", self.address))
                .bearer_auth(token),
            query,
        )
        .await
    }

    /// Waits until the pool has processed `height` (at most 60 s).
    pub async fn wait_processed(&self, height: i64) {
        assert!(
            processes_up_to(&self.app_state.db, height, 60).await,
            "the pool did not reach height {height}"
        );
    }
}

/// Builds and starts the application on port 0 against a fresh database, with its daemon
/// at `rpc_url`.
pub async fn spawn_app(rpc_url: &str) -> TestApp {
    let db = TestDb::new(true).await;
    spawn_app_with(db, |c| c, rpc_url).await
}

/// As [`spawn_app`], with a database of the caller's and a hook to change the config.
pub async fn spawn_app_with(
    db: TestDb,
    edit: impl FnOnce(Config) -> Config,
    rpc_url: &str,
) -> TestApp {
    let config = edit(test_config(&db.url, rpc_url));
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let address = format!("http://{}", app.addr());
    let app_state = app.state().clone();
    let handle = app.handle();
    let running = actix_web::rt::spawn(app.run());
    TestApp {
        address,
        app_state,
        client: coinstaker::net::client_builder().build().unwrap(),
        db,
        handle,
        running: Some(running),
    }
}

/// POSTs a GraphQL query to the server at `base` (`http://host:port`) and returns the JSON
/// reply.
pub async fn post_graphql(client: &reqwest::Client, base: &str, query: &str) -> serde_json::Value {
    send_graphql(client.post(format!("{base}/graphql")), query).await
}

/// Sends `query` as a GraphQL POST body on `request` and returns the JSON reply.
async fn send_graphql(request: reqwest::RequestBuilder, query: &str) -> serde_json::Value {
    request
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("GraphQL reply is JSON")
}

/// The payments of chain `VRSC` not settled yet: planned, submitted or sent.
pub async fn open_payments(
    db: &impl ConnectionTrait,
) -> coinstaker::store::StoreResult<Vec<coinstaker::store::payments::Payment>> {
    use coinstaker::domain::PaymentStatus;
    coinstaker::store::payments::with_status(
        db,
        "VRSC",
        &[
            PaymentStatus::Planned,
            PaymentStatus::Submitted,
            PaymentStatus::Sent,
        ],
    )
    .await
}

/// Whether the pool on `db` (a `serve` child, say) processes chain `VRSC` up to `height`
/// within `secs` seconds.
pub async fn processes_up_to(db: &impl ConnectionTrait, height: i64, secs: u64) -> bool {
    eventually(secs, || async {
        coinstaker::store::chain::processed_height(db, "VRSC")
            .await
            .ok()
            .filter(|h| *h >= height)
    })
    .await
    .is_some()
}

/// An address where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Polls `check` until it returns `Some`, for at most `secs` seconds (a wait for
/// asynchronous work, not a timing assertion).
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An admin token accepted by [`pool_for`]'s configuration and by [`serve`] children.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The SHA-256 of [`ADMIN_TOKEN`] as the configuration holds it (lowercase hex).
pub fn admin_token_hash() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(ADMIN_TOKEN.as_bytes()))
}

/// A config edit that points the pool at `sim`: its pool identity and R-address, its ZMQ,
/// processing from `start_height`.
pub fn pool_for(
    sim: &verusd_sim::Simulator,
    start_height: u32,
) -> impl FnOnce(Config) -> Config + use<> {
    let state = sim
        .call("sim_state", serde_json::json!([]))
        .expect("sim_state");
    let identity = state["poolidentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = state["poolprimaryaddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let zmq = sim.zmq_url.clone();
    move |mut c: Config| {
        let chain = &mut c.chains[0];
        chain.pool_identity = identity.parse().expect("pool identity");
        chain.pool_primary_address = r.parse().expect("pool R-address");
        chain.zmq_block_url = zmq;
        chain.start_height = Some(start_height);
        c.http.admin_token_sha256 = vec![coinstaker::config::TokenHash::of_token(ADMIN_TOKEN)];
        c
    }
}

/// Every business row of the chain-following tables, without generated ids or timestamps,
/// in a stable order: two databases that processed the same chain compare equal.
pub async fn business_rows(db: &DatabaseConnection) -> Vec<String> {
    use entity::*;
    use sea_orm::{EntityTrait, QueryOrder};
    let mut out = Vec::new();
    for b in block::Entity::find()
        .order_by_asc(block::Column::Height)
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("block {} {} {}", b.height, b.hash, b.prev_hash));
    }
    let mut rows: Vec<String> = identity_version::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|v| {
            format!(
                "identity {} {} {} {} {} {} {} {}",
                v.identity_address,
                v.height,
                v.txid,
                v.flags,
                v.timelock,
                v.primary_addresses,
                v.revocation_authority,
                v.recovery_authority
            )
        })
        .collect();
    rows.sort();
    out.extend(rows);
    let mut rows: Vec<String> = subscriber_utxo::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| {
            format!(
                "utxo {} {}:{} {} @{} spent {:?} by {:?} pool {}",
                u.identity_address,
                u.txid,
                u.vout,
                u.amount,
                u.height,
                u.spent_height,
                u.spent_txid,
                u.from_pool
            )
        })
        .collect();
    rows.sort();
    out.extend(rows);
    let mut rows: Vec<String> = subscriber::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            format!(
                "subscriber {} {} {} {:?} {:?} {:?}",
                s.identity_address, s.name, s.status, s.joined_height, s.left_height, s.unmet
            )
        })
        .collect();
    rows.sort();
    out.extend(rows);
    let mut rows: Vec<String> = subscriber_status::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            format!(
                "status {} {} {} {:?}",
                s.identity_address, s.height, s.status, s.reason
            )
        })
        .collect();
    rows.sort();
    out.extend(rows);
    let mut rows: Vec<String> = eligibility_interval::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            format!(
                "interval {} {} {:?}",
                i.identity_address, i.from_height, i.to_height
            )
        })
        .collect();
    rows.sort();
    out.extend(rows);
    for e in event::Entity::find()
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!(
            "event {} {} {:?} {:?} {:?} {}",
            e.id, e.kind, e.alert, e.height, e.identity_address, e.message
        ));
    }
    out
}

/// Registers an identity on the simulator (mined with the next block); returns its i-address.
pub fn register(sim: &verusd_sim::Simulator, name: &str, spec: serde_json::Value) -> String {
    let state = sim.call("sim_state", serde_json::json!([])).unwrap();
    let mut full = serde_json::json!({"name": name, "primaryaddresses": [format!("{}", verusd_sim::ids::r_address(&format!("own:{name}"))), state["poolprimaryaddress"]], "locked": true, "timelock": 1440,
        "revocationauthority": verusd_sim::ids::identity_address(&format!("{name}-revoke"), "x"),
        "recoveryauthority": verusd_sim::ids::identity_address(&format!("{name}-recover"), "x")});
    if let (Some(obj), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    sim.call("sim_registeridentity", serde_json::json!([full]))
        .unwrap()["identityaddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Mines `n` work blocks on the simulator; returns the new tip height.
pub fn mine(sim: &verusd_sim::Simulator, n: u32) -> i64 {
    sim.call("sim_generate", serde_json::json!([n])).unwrap();
    sim.call("getblockcount", serde_json::json!([]))
        .unwrap()
        .as_i64()
        .unwrap()
}

/// A child process that is killed when dropped, so a failing test never leaves a server
/// running (CI once found a `coinstaker serve` orphaned by a test run).
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `coinstaker serve` as a child process against `sim` on the database `url`, with
/// `extra` lines added to the chain section and an optional `COINSTAKER_FAULT`; returns the
/// child and the lines of its log.
pub fn serve(
    dir: &std::path::Path,
    sim: &verusd_sim::Simulator,
    url: &str,
    extra: &str,
    fault: Option<&str>,
) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let state = sim.call("sim_state", serde_json::json!([])).unwrap();
    let config = dir.join("pool.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\n[http]\nbind = \"127.0.0.1:0\"\nadmin_token_sha256 = [\"{admin}\"]\n{cluster}[[chain]]\nname = \"VRSC\"\nrpc_url = \"{}\"\nrpc_user = \"{RPC_USER}\"\nrpc_password = \"{RPC_PASSWORD}\"\npoll_interval_secs = 1\nstart_height = 1\npool_identity = \"{}\"\npool_primary_address = \"{}\"\n{extra}\n",
            sim.rpc_url,
            state["poolidentity"].as_str().unwrap(),
            state["poolprimaryaddress"].as_str().unwrap(),
            admin = admin_token_hash(),
            // A short lease (a restarted test pool takes its lease back after 1 s), unless
            // the test configures the cluster itself.
            cluster = if extra.contains("[cluster]") {
                ""
            } else {
                "[cluster]\nlease_secs = 3\n"
            }
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_coinstaker"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    if let Some(f) = fault {
        cmd.env("COINSTAKER_FAULT", f);
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}
