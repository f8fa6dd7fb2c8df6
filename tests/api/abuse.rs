//! The public API under hostile clients (issue 17): costs multiply through nested lists and
//! are refused with the cost and the limit, a batch shares one budget and a batch over the
//! limit is refused whole, costly operations are counted one by one per client address
//! (behind a trusted proxy, the forwarded one), and WebSocket connections and subscriptions
//! are capped. None of this is timed: each refusal is checked by its code and effect.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::clients::GqlClient;
use crate::support::{ADMIN_TOKEN, TestApp, TestDb, eventually, pool_for, sim, spawn_app_with};

fn code(reply: &Value) -> &str {
    reply["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

async fn post(app: &TestApp, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("POST /graphql");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

async fn app_with(
    edit: impl FnOnce(&mut coinstaker::config::HttpConfig) + 'static,
) -> (TestApp, verusd_sim::Simulator) {
    let sim = sim().await;
    let pool = pool_for(&sim, 1);
    let app = spawn_app_with(
        TestDb::new(false).await,
        move |c| {
            let mut c = pool(c);
            edit(&mut c.http);
            c
        },
        &sim.rpc_url,
    )
    .await;
    (app, sim)
}

#[actix_web::test]
async fn nested_lists_multiply_and_the_cost_is_in_the_refusal() {
    let (app, _sim) = app_with(|h| h.max_complexity = 100).await;
    // Documented: a field is 1 + what it selects; a list of `first` is 1 + first × that.
    // amount 1; Credit nodes 1 + 1 = 2; credits 1 + 20 × 2 = 41; Subscriber nodes 1 + 41 =
    // 42; subscribers 1 + 10 × 42 = 421.
    let nested = "{ subscribers(first: 10) { nodes { credits(first: 20) { nodes { amount } } } } }";
    let reply = app.graphql(nested).await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert_eq!(
        reply["errors"][0]["message"], "this query costs 421; the limit is 100",
        "{reply}"
    );
    assert!(reply["data"].is_null(), "nothing ran: {reply}");
    // Stake.credits is bounded by `first` (default 100) and multiplies too: credits 1 + 100 ×
    // 1 = 101; nodes 102; stakes 1 + 1 × 102 = 103.
    let reply = app
        .graphql("{ stakes(first: 1) { nodes { credits { amount } } } }")
        .await;
    assert_eq!(
        reply["errors"][0]["message"], "this query costs 103; the limit is 100",
        "{reply}"
    );
    // Under the limit it runs.
    let reply = app
        .graphql("{ stakes(first: 2) { nodes { credits(first: 7) { amount work } } } }")
        .await;
    assert!(reply["errors"].is_null(), "{reply}");

    // The default limit refuses the costliest nested page outright.
    let (default, _sim2) = app_with(|_| {}).await;
    let reply = default
        .graphql("{ subscribers(first: 500) { nodes { credits(first: 500) { nodes { amount blockHash } } payments(first: 500) { nodes { total } } } } }")
        .await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("the limit is 20000")),
        "{reply}"
    );
}

#[actix_web::test]
async fn a_batch_shares_one_budget_and_a_batch_over_the_limit_is_refused_whole() {
    let (app, _sim) = app_with(|h| {
        h.max_complexity = 100;
        h.max_batch = 3;
    })
    .await;
    // 33 + 67 = 100: exactly the budget.
    let q33 =
        json!({"query": "{ stakes(first: 2) { nodes { credits(first: 7) { amount work } } } }"});
    let q67 =
        json!({"query": "{ stakes(first: 3) { nodes { credits(first: 10) { amount work } } } }"});
    let (status, reply) = post(&app, json!([q33, q67]), &[]).await;
    assert_eq!(status, 200);
    assert!(
        reply
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["errors"].is_null()),
        "{reply}"
    );
    // 67 + 67 = 134: the one validated second finds 33 left.
    let (_, reply) = post(&app, json!([q67, q67]), &[]).await;
    let results = reply.as_array().unwrap();
    let refused: Vec<&Value> = results.iter().filter(|r| !r["errors"].is_null()).collect();
    assert_eq!(refused.len(), 1, "{reply}");
    assert_eq!(code(refused[0]), "INVALID_INPUT");
    assert_eq!(
        refused[0]["errors"][0]["message"],
        "this operation costs 67; 33 of the batch's limit of 100 is left"
    );

    // Four operations, one of them an admin mutation: refused whole, nothing runs.
    let pause = json!({"query": "mutation { pausePayouts(paused: true, reason: \"batch\") { payoutsPaused } }"});
    let pools = json!({"query": "{ pools { chain } }"});
    let (status, reply) = post(
        &app,
        json!([pause, pools, pools, pools]),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 3 operations")),
        "{reply}"
    );
    let reply = app.graphql("{ pool { payoutsPaused } }").await;
    assert_eq!(reply["data"]["pool"]["payoutsPaused"], false, "{reply}");
}

#[actix_web::test]
async fn costly_operations_are_counted_one_by_one_per_client_address() {
    let (app, _sim) = app_with(|h| h.mutation_rate_per_minute = 5).await;
    // Six aliased mutation fields in one document: six, more than a minute allows.
    let aliased: String = (0..6)
        .map(|i| format!("m{i}: subscribe(identity: \"nobody{i}@\") {{ eligible }} "))
        .collect();
    let reply = app.graphql(&format!("mutation {{ {aliased} }}")).await;
    assert_eq!(code(&reply), "RATE_LIMITED", "{reply}");
    assert!(
        reply["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "{reply}"
    );
    assert!(reply["data"].is_null(), "nothing ran: {reply}");
    // checkIdentity counts too: three, then three more is one minute's five exceeded.
    let checks = "{ a: checkIdentity(identity: \"nobody@\") { eligible } b: checkIdentity(identity: \"nobody@\") { eligible } c: checkIdentity(identity: \"nobody@\") { eligible } }";
    let reply = app.graphql(checks).await;
    assert_ne!(code(&reply), "RATE_LIMITED", "{reply}");
    let reply = app.graphql(checks).await;
    assert_eq!(code(&reply), "RATE_LIMITED", "{reply}");
    // Plain queries are not counted.
    let reply = app.graphql("{ pools { chain } }").await;
    assert!(reply["errors"].is_null(), "{reply}");
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let check = json!({"query": "{ checkIdentity(identity: \"nobody@\") { eligible } }"});
    let limited = |reply: &Value| code(reply) == "RATE_LIMITED";
    // The test's requests come from 127.0.0.1: trusted here.
    let (proxied, _sim) = app_with(|h| {
        h.mutation_rate_per_minute = 1;
        h.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let xff = |ip: &'static str| [("x-forwarded-for", ip)];
    let (_, r) = post(&proxied, check.clone(), &xff("198.51.100.1, 203.0.113.7")).await;
    assert!(!limited(&r), "{r}");
    let (_, r) = post(&proxied, check.clone(), &xff("198.51.100.1, 203.0.113.7")).await;
    assert!(limited(&r), "the same client again: {r}");
    let (_, r) = post(&proxied, check.clone(), &xff("203.0.113.8")).await;
    assert!(!limited(&r), "another client behind the proxy: {r}");
    let fwd = [("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")];
    let (_, r) = post(&proxied, check.clone(), &fwd).await;
    assert!(!limited(&r), "{r}");
    let (_, r) = post(&proxied, check.clone(), &fwd).await;
    assert!(limited(&r), "{r}");

    // Not trusted: the headers are ignored, every request is the peer's.
    let (direct, _sim2) = app_with(|h| h.mutation_rate_per_minute = 1).await;
    let (_, r) = post(&direct, check.clone(), &xff("203.0.113.7")).await;
    assert!(!limited(&r), "{r}");
    let (_, r) = post(&direct, check.clone(), &xff("203.0.113.9")).await;
    assert!(
        limited(&r),
        "a forged header does not make a new client: {r}"
    );
}

/// Opens a WebSocket upgrade by hand and returns the connection and the response's status.
async fn upgrade(app: &TestApp) -> (tokio::net::TcpStream, u16) {
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "GET /graphql HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a response head in time")
            .unwrap();
        assert_eq!(n, 1, "the server closed before answering");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (stream, status)
}

#[actix_web::test]
async fn websocket_connections_per_address_and_subscriptions_per_connection_are_capped() {
    let (app, _sim) = app_with(|h| {
        h.max_ws_connections_per_address = 2;
        h.max_subscriptions_per_connection = 2;
    })
    .await;
    let (first, s1) = upgrade(&app).await;
    let (_second, s2) = upgrade(&app).await;
    assert_eq!((s1, s2), (101, 101));
    let (_, s3) = upgrade(&app).await;
    assert_eq!(s3, 429, "a third connection from the same address");
    // Closing one gives its slot back.
    drop(first);
    let again = eventually(10, || async {
        let (stream, status) = upgrade(&app).await;
        (status == 101).then_some(stream)
    })
    .await;
    assert!(again.is_some(), "a slot is free again after a close");
    drop(again);
    drop(_second);

    // Three subscriptions on one connection: one is refused, with its code, the others run.
    let wait_free = eventually(10, || async {
        let (stream, status) = upgrade(&app).await;
        drop(stream);
        (status == 101).then_some(())
    })
    .await;
    assert!(wait_free.is_some());
    let subs: Vec<Value> = (0..3)
        .map(|i| json!({"label": format!("s{i}"), "query": "subscription { events { cursor } }"}))
        .collect();
    let ws = format!("{}/graphql", app.address.replace("http://", "ws://"));
    let client = GqlClient::start(&ws, "graphql-transport-ws", &json!(subs), &json!({}));
    client
        .wait_until(30, "one subscription is refused", |lines| {
            lines
                .iter()
                .filter(|l| {
                    l["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("at most 2 subscriptions"))
                })
                .count()
                == 1
        })
        .await;
}

#[actix_web::test]
async fn requests_beyond_the_concurrent_limit_wait_their_turn_then_get_unavailable() {
    // The one turn is held for the 3 s the daemon takes to answer checkIdentity (longer than
    // the 1 s a request waits for its turn): the field waiting for the daemon gives the turn
    // back, but the request's other field takes it again and the request keeps it to its end.
    let (app, sim, holder) = one_turn_and_a_slow_daemon(
        "{ checkIdentity(identity: \"nobody@\") { eligible unmet } pools { chain } }",
    )
    .await;
    let (status, reply) = post(&app, json!({"query": "{ pools { chain } }"}), &[]).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(code(&reply), "UNAVAILABLE", "{reply}");
    assert_eq!(reply["errors"][0]["extensions"]["retryAfter"], 5, "{reply}");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("waited 1 s")),
        "{reply}"
    );
    // The request holding the turn ran to its end: the daemon's answer (it knows no such
    // identity), not a refusal, and its other field.
    let (status, reply) = holder.await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(code(&reply), "NOT_FOUND", "{reply}");
    assert_eq!(
        reply["errors"][0]["message"], "Identity not found",
        "{reply}"
    );
    assert!(reply["data"]["pools"][0]["chain"].is_string(), "{reply}");
    // With the turn free, the next request runs.
    sim.call("sim_slow", json!(["getidentity", 0])).unwrap();
    let (status, reply) = post(&app, json!({"query": "{ pools { chain } }"}), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["data"]["pools"][0]["chain"].is_string(), "{reply}");
}

#[actix_web::test]
async fn a_request_waiting_for_the_daemon_gives_its_turn_to_others() {
    let (app, sim, waiting) =
        one_turn_and_a_slow_daemon("{ checkIdentity(identity: \"nobody@\") { eligible unmet } }")
            .await;
    // The one turn is free while checkIdentity waits for the daemon: another client's
    // request runs at once, where it used to wait for the daemon's answer.
    let (status, reply) = post(&app, json!({"query": "{ pools { chain } }"}), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["data"]["pools"][0]["chain"].is_string(), "{reply}");
    assert!(
        !waiting.is_finished(),
        "checkIdentity was answered before the daemon's answer"
    );
    // The request waiting for the daemon takes its turn back and ends normally.
    let (status, reply) = waiting.await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(code(&reply), "NOT_FOUND", "{reply}");
    sim.call("sim_slow", json!(["getidentity", 0])).unwrap();
}

/// A pool with one execution at a time (1 s of waiting for it) and a daemon that takes 3 s
/// to answer `getidentity`; `query` sent half a second ago, from a task of its own that
/// returns its HTTP status and body.
async fn one_turn_and_a_slow_daemon(
    query: &'static str,
) -> (
    TestApp,
    verusd_sim::Simulator,
    tokio::task::JoinHandle<(u16, Value)>,
) {
    let (app, sim) = app_with(|h| {
        h.max_concurrent_requests = 1;
        h.execution_wait_secs = 1;
    })
    .await;
    sim.call("sim_slow", json!(["getidentity", 3_000])).unwrap();
    let (client, address) = (app.client.clone(), app.address.clone());
    let sent = tokio::spawn(async move {
        let resp = client
            .post(format!("{address}/graphql"))
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("POST /graphql");
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.expect("JSON"),
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    (app, sim, sent)
}

/// With `yield_to_blocks_ms`: a block processed, then the next one announced with its
/// `getblock` taking 3 s, and `{ pools { processedHeight } }` asked while the watcher
/// processes it (its gate closed). The heights of the two blocks and the answer.
async fn asked_during_a_slow_block(yield_to_blocks_ms: u64) -> (i64, i64, Value, TestApp) {
    let (app, sim) = app_with(move |h| h.yield_to_blocks_ms = yield_to_blocks_ms).await;
    let height = crate::support::mine(&sim, 1);
    app.wait_processed(height).await;
    // The block is stored a moment before the watcher's pass ends and opens the gate.
    eventually(30, || async {
        (!app.app_state.clients.yielding()).then_some(())
    })
    .await
    .expect("the gate stayed closed after the block was processed");
    sim.call("sim_slow", json!(["getblock", 3_000])).unwrap();
    let next = crate::support::mine(&sim, 1);
    eventually(30, || async {
        app.app_state.clients.yielding().then_some(())
    })
    .await
    .expect("the watcher never closed the gate for the block");
    let processed = app.graphql("{ pools { processedHeight } }").await;
    sim.call("sim_slow", json!(["getblock", 0])).unwrap();
    (
        height,
        next,
        processed["data"]["pools"][0]["processedHeight"].clone(),
        app,
    )
}

#[actix_web::test]
async fn a_request_arriving_while_a_block_is_processed_is_answered_after_it() {
    let (_, next, processed, app) = asked_during_a_slow_block(60_000).await;
    // Sent while the block was being fetched, it ran only when the block was done.
    assert_eq!(processed, json!(next));
    assert!(!app.app_state.clients.yielding());
}

#[actix_web::test]
async fn without_yielding_a_request_is_answered_while_the_block_is_processed() {
    let (height, _, processed, _app) = asked_during_a_slow_block(0).await;
    assert_eq!(processed, json!(height));
}
