//! The live API: GraphQL subscriptions over both WebSocket protocols with a real client library
//! (Python `gql`), resuming with `events(after:)`, a listener that falls behind, and signed
//! webhooks that survive a failing, restarted receiver and a restarted pool.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::futures_util::StreamExt;
use coinstaker::config::{Secret, WebhookConfig};
use coinstaker::domain::{EventKind, Sats};
use coinstaker::store::{self, events::EventFilter, events::StoredEvent};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use crate::support::clients::GqlClient;
use crate::support::{
    ADMIN_TOKEN, TestApp, TestDb, eventually, mine, pool_for, register, sim, spawn_app_with,
};

fn config_edit(
    sim: &verusd_sim::Simulator,
) -> impl FnOnce(coinstaker::config::Config) -> coinstaker::config::Config + use<> {
    let edit = pool_for(sim, 1);
    move |c| {
        let mut c = edit(c);
        c.chains[0].maturity = 100;
        c.chains[0].min_payout = Sats(50_000_000);
        c.notifier.poll_interval_ms = 50;
        c
    }
}

fn ws_url(app: &TestApp) -> String {
    format!("{}/graphql", app.address.replace("http://", "ws://"))
}

async fn stored_after(app: &TestApp, after: i64) -> Vec<StoredEvent> {
    store::events::list(
        &app.app_state.db,
        &EventFilter {
            after: Some(after),
            ..EventFilter::default()
        },
        10_000,
    )
    .await
    .unwrap()
}

async fn wait_open_subscriptions(app: &TestApp, n: i64) {
    let metrics = app.app_state.metrics.clone();
    let ok = eventually(60, || async {
        (metrics.open_subscriptions() == n).then_some(())
    })
    .await;
    assert!(
        ok.is_some(),
        "expected {n} open subscriptions, have {}",
        metrics.open_subscriptions()
    );
}

/// (cursor, kind) of each result of a subscription whose field is `field`.
fn received(client: &GqlClient, label: &str, field: &str) -> Vec<(String, String)> {
    client
        .results(label)
        .iter()
        .map(|d| {
            (
                d[field]["cursor"].as_str().unwrap_or_default().to_owned(),
                d[field]["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn expected<'a>(
    events: impl IntoIterator<Item = &'a StoredEvent>,
    keep: impl Fn(&StoredEvent) -> bool,
) -> Vec<(String, String)> {
    events
        .into_iter()
        .filter(|e| keep(e))
        .map(|e| (e.id.to_string(), e.event.kind.as_str().to_owned()))
        .collect()
}

const FIELDS: &str = "cursor kind chain height message alert identityAddress blockHash payment { id outputs { identityAddress amount } } stake { status } subscriber { status }";

#[actix_web::test]
async fn both_websocket_protocols_receive_every_event_kind_complete_and_in_order() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([alice, "3000"])).unwrap();
    sim.call("sim_fund", json!([bob, "1000"])).unwrap();
    let tip = mine(&sim, 169);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let before = store::events::last_id(&app.app_state.db).await.unwrap();
    assert!(before >= 2, "alice and bob joined before the clients came");

    let subscriptions = json!([
        {"label": "events", "query": format!("subscription {{ events(after: \"{before}\") {{ {FIELDS} }} }}")},
        {"label": "live", "query": format!("subscription {{ events {{ {FIELDS} }} }}")},
        {"label": "joined", "query": "subscription { subscriberJoined { cursor kind } }"},
        {"label": "left", "query": "subscription { subscriberLeft { cursor kind } }"},
        {"label": "found", "query": "subscription { stakeFound { cursor kind } }"},
        {"label": "matured", "query": "subscription { stakeMatured { cursor kind } }"},
        {"label": "stale", "query": "subscription { stakeStale(chain: \"vrsc\") { cursor kind } }"},
        {"label": "paid", "query": "subscription { paymentSent { cursor kind } }"},
        {"label": "aliceFound", "query": "subscription { stakeFound(identity: \"alice@\") { cursor kind } }"},
        {"label": "alicePaid", "query": format!("subscription {{ paymentSent(identity: \"{alice}\") {{ cursor kind }} }}")},
        {"label": "bob", "query": "subscription { events(identity: \"bob@\", kinds: [IDENTITY_ALERT, SUBSCRIBER_LEFT]) { cursor kind } }"},
    ]);
    let per_client = subscriptions.as_array().unwrap().len() as i64;
    let clients = [
        GqlClient::start(
            &ws_url(&app),
            "graphql-transport-ws",
            &subscriptions,
            &json!({}),
        ),
        GqlClient::start(&ws_url(&app), "graphql-ws", &subscriptions, &json!({})),
    ];
    wait_open_subscriptions(&app, 2 * per_client).await;

    // Every kind of event, in the order a pool meets them.
    let carol = register(&sim, "carol", json!({}));
    mine(&sim, 1); // carol joins
    sim.call("sim_stake", json!([alice])).unwrap(); // found
    let tip = mine(&sim, 100); // matured
    app.wait_processed(tip).await;
    sim.call("sim_stake", json!([bob])).unwrap(); // found
    let tip = mine(&sim, 0);
    app.wait_processed(tip).await;
    sim.call("sim_reorg", json!([1])).unwrap(); // bob's stake goes stale
    let tip = mine(&sim, 2);
    app.wait_processed(tip).await;
    let reply = app
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id status } }")
        .await;
    assert_eq!(
        reply["data"]["runPayouts"][0]["status"], "SUBMITTED",
        "{reply}"
    );
    let db = app.app_state.db.clone();
    let sent = eventually(30, || async {
        let paid = store::events::list(
            &db,
            &EventFilter {
                kinds: vec![EventKind::PaymentSent],
                ..EventFilter::default()
            },
            1,
        )
        .await
        .unwrap();
        (!paid.is_empty()).then_some(())
    })
    .await;
    assert!(sent.is_some(), "the payment was sent");
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "bob@", "locked": false, "timelock": tip + 1440}]),
    )
    .unwrap(); // bob asks to unlock: alert, and he leaves
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;

    let stored = stored_after(&app, before).await;
    for kind in EventKind::ALL {
        assert!(
            stored.iter().any(|e| e.event.kind == *kind),
            "no {kind} event in {stored:#?}"
        );
    }
    let all = expected(&stored, |_| true);
    let kind = |k: EventKind| move |e: &StoredEvent| e.event.kind == k;
    for client in &clients {
        client
            .wait_until(60, "every event arrives on every subscription", |_| {
                received(client, "events", "events").len() >= all.len()
                    && received(client, "live", "events").len() >= all.len()
            })
            .await;
        assert_eq!(received(client, "events", "events"), all, "events(after:)");
        assert_eq!(received(client, "live", "events"), all, "events");
        let typed = [
            ("joined", "subscriberJoined", EventKind::SubscriberJoined),
            ("left", "subscriberLeft", EventKind::SubscriberLeft),
            ("found", "stakeFound", EventKind::StakeFound),
            ("matured", "stakeMatured", EventKind::StakeMatured),
            ("stale", "stakeStale", EventKind::StakeStale),
            ("paid", "paymentSent", EventKind::PaymentSent),
        ];
        for (label, field, k) in typed {
            assert_eq!(
                received(client, label, field),
                expected(&stored, kind(k)),
                "{label}"
            );
        }
        let pays_alice = |e: &StoredEvent| {
            e.event.kind == EventKind::PaymentSent && e.identities().any(|i| i == alice)
        };
        assert_eq!(
            received(client, "alicePaid", "paymentSent"),
            expected(&stored, pays_alice)
        );
        assert!(!received(client, "alicePaid", "paymentSent").is_empty());
        let alice_found = |e: &StoredEvent| {
            e.event.kind == EventKind::StakeFound
                && e.event.identity_address.as_deref() == Some(alice.as_str())
        };
        assert_eq!(
            received(client, "aliceFound", "stakeFound"),
            expected(&stored, alice_found)
        );
        let about_bob = |e: &StoredEvent| {
            matches!(
                e.event.kind,
                EventKind::IdentityAlert | EventKind::SubscriberLeft
            ) && e.event.identity_address.as_deref() == Some(bob.as_str())
        };
        assert_eq!(
            received(client, "bob", "events"),
            expected(&stored, about_bob)
        );
        assert_eq!(received(client, "bob", "events").len(), 2);
        // Nested fields resolve over the socket too.
        let payment = client
            .results("events")
            .into_iter()
            .find(|d| d["events"]["kind"] == "PAYMENT_SENT")
            .unwrap();
        assert!(
            payment["events"]["payment"]["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["identityAddress"] == alice.as_str()),
            "{payment}"
        );
        let joined = client.results("joined");
        assert_eq!(joined.len(), 1);
        assert_eq!(
            stored
                .iter()
                .find(|e| e.id.to_string()
                    == joined[0]["subscriberJoined"]["cursor"].as_str().unwrap())
                .and_then(|e| e.event.identity_address.clone()),
            Some(carol.clone())
        );
    }

    // The operator sees the same books in /metrics.
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    };
    assert_eq!(
        value("coinstaker_stakes{chain=\"VRSC\",status=\"MATURED\"}"),
        1.0
    );
    assert_eq!(
        value("coinstaker_stakes{chain=\"VRSC\",status=\"STALE\"}"),
        1.0
    );
    assert_eq!(
        value("coinstaker_payments{chain=\"VRSC\",status=\"SENT\"}"),
        1.0
    );
    assert_eq!(value("coinstaker_chain_lag_blocks{chain=\"VRSC\"}"), 0.0);
    assert_eq!(
        value("coinstaker_graphql_subscriptions"),
        2.0 * per_client as f64
    );
    assert!(value("coinstaker_block_processing_seconds_count{chain=\"VRSC\"}") >= 100.0);
    assert!(value("coinstaker_graphql_request_seconds_count") >= 1.0);
    assert!(value("coinstaker_pool_spendable_sats{chain=\"VRSC\"}") > 0.0);
    let totals = store::ledger::pool_totals(&app.app_state.db, "VRSC")
        .await
        .unwrap();
    assert_eq!(
        value("coinstaker_liabilities_sats{chain=\"VRSC\"}"),
        (totals.pending_total.0 + totals.in_flight_total.0) as f64
    );
    assert!(
        totals.in_flight_total.0 > 0,
        "the payment is not confirmed yet"
    );
    drop(clients);
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_client_that_missed_20_events_resumes_with_events_after() {
    let sim = sim().await;
    let tip = mine(&sim, 1);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let query =
        json!([{"label": "e", "query": "subscription { events { cursor kind identityAddress } }"}]);
    let mut first = GqlClient::start(&ws_url(&app), "graphql-transport-ws", &query, &json!({}));
    wait_open_subscriptions(&app, 1).await;
    register(&sim, "first", json!({}));
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    first
        .wait_until(30, "the first event arrives", |lines| {
            lines.iter().any(|l| l.get("data").is_some())
        })
        .await;
    let seen = first.results("e");
    let last = seen.last().unwrap()["events"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    first.kill();
    wait_open_subscriptions(&app, 0).await;

    // Twenty events while the client is away.
    for i in 0..20 {
        register(&sim, &format!("away{i}"), json!({}));
    }
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    let missed = stored_after(&app, last.parse().unwrap()).await;
    assert_eq!(missed.len(), 20, "{missed:#?}");

    let resume = json!([{"label": "e", "query": format!("subscription {{ events(after: \"{last}\") {{ cursor kind identityAddress }} }}")}]);
    let second = GqlClient::start(&ws_url(&app), "graphql-ws", &resume, &json!({}));
    second
        .wait_until(30, "the 20 missed events are replayed", |_| {
            second.results("e").len() >= 20
        })
        .await;
    let cursors = |c: &GqlClient| -> Vec<String> {
        c.results("e")
            .iter()
            .map(|d| d["events"]["cursor"].as_str().unwrap().to_owned())
            .collect()
    };
    let missed_cursors: Vec<String> = missed.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        cursors(&second),
        missed_cursors,
        "exactly those 20, in order"
    );

    // Then live ones, with no gap and no duplicate.
    for i in 0..3 {
        register(&sim, &format!("later{i}"), json!({}));
    }
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    second
        .wait_until(30, "live events follow", |_| {
            second.results("e").len() >= 23
        })
        .await;
    let all: Vec<String> = stored_after(&app, last.parse().unwrap())
        .await
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(all.len(), 23);
    // Anything late would be a duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cursors(&second), all);
    drop(second);
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_listener_that_falls_behind_is_told_where_to_resume() {
    let sim = sim().await;
    let tip = mine(&sim, 1);
    let edit = config_edit(&sim);
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut c = edit(c);
            c.notifier.buffer = 4;
            c
        },
        &sim.rpc_url,
    )
    .await;
    app.wait_processed(tip).await;
    let start = store::events::last_id(&app.app_state.db).await.unwrap();
    let schema = coinstaker::graphql::build_schema(app.app_state.clone());
    let mut slow = schema.execute_stream("subscription { events { cursor } }");
    // Start the subscription, then read nothing while ten events are published.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), slow.next())
            .await
            .is_err()
    );
    for i in 0..10 {
        register(&sim, &format!("burst{i}"), json!({}));
    }
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    let feed = app.app_state.feed.clone();
    let published = eventually(30, || async {
        (feed.published() >= start + 10).then_some(())
    })
    .await;
    assert!(published.is_some());

    let reply = slow.next().await.unwrap();
    let error = &reply.errors[0];
    let ext = serde_json::to_value(&error.extensions).unwrap();
    assert_eq!(ext["code"], "LAGGED", "{error:?}");
    assert_eq!(ext["resumeAfter"], start.to_string());
    assert!(
        slow.next().await.is_none(),
        "the stream ends after the error"
    );

    // Resuming from the cursor the error gave loses nothing.
    let mut resumed = schema.execute_stream(format!(
        "subscription {{ events(after: \"{start}\") {{ cursor }} }}"
    ));
    let mut cursors = Vec::new();
    for _ in 0..10 {
        let r = resumed.next().await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let data = r.data.into_json().unwrap();
        cursors.push(data["events"]["cursor"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (start + 1..=start + 10).map(|i| i.to_string()).collect();
    assert_eq!(cursors, expected);
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn admin_mutations_over_websocket_take_the_token_from_connection_init() {
    let sim = sim().await;
    let tip = mine(&sim, 1);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let pause = json!([{"label": "m", "execute": true, "query": "mutation { pausePayouts(paused: true, reason: \"over a websocket\") { payoutsPaused pausedReason } }"}]);
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        for (init, code) in [
            (json!({}), "UNAUTHENTICATED"),
            (
                json!({"Authorization": "Bearer not-the-token"}),
                "FORBIDDEN",
            ),
        ] {
            let client = GqlClient::start(&ws_url(&app), protocol, &pause, &init);
            client
                .wait_until(30, "the mutation is refused", |lines| {
                    lines.iter().any(|l| l.get("error").is_some())
                })
                .await;
            let error = client
                .lines()
                .into_iter()
                .find_map(|l| l.get("error").cloned());
            assert!(
                error
                    .as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .contains(code),
                "{protocol} {init}: {error:?}"
            );
        }
    }
    let reply = app.graphql("{ pool { payoutsPaused } }").await;
    assert_eq!(
        reply["data"]["pool"]["payoutsPaused"], false,
        "nothing changed"
    );

    let admin = GqlClient::start(
        &ws_url(&app),
        "graphql-transport-ws",
        &pause,
        &json!({"Authorization": format!("Bearer {ADMIN_TOKEN}")}),
    );
    admin
        .wait_until(30, "the mutation runs", |_| !admin.results("m").is_empty())
        .await;
    assert_eq!(
        admin.results("m")[0]["pausePayouts"],
        json!({"payoutsPaused": true, "pausedReason": "paused by an admin: over a websocket"})
    );
    let audit = store::audit::recent(&app.app_state.db, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0.mutation, "pausePayouts");
    assert_eq!(
        audit[0].0.token_prefix,
        coinstaker::config::TokenHash::of_token(ADMIN_TOKEN).to_string()[..12]
    );
    drop(admin);
    app.stop().await;
    sim.stop().await;
}

/// What a webhook receiver saw: each request's headers of interest and body.
#[derive(Default)]
struct Inbox {
    requests: Vec<(String, String, String, Vec<u8>)>,
    fail_first: usize,
}

async fn receive(
    inbox: web::Data<Mutex<Inbox>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut inbox = inbox.lock().unwrap();
    inbox.requests.push((
        header("x-coinstaker-cursor"),
        header("x-coinstaker-timestamp"),
        header("x-coinstaker-signature"),
        body.to_vec(),
    ));
    if inbox.requests.len() <= inbox.fail_first {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

fn start_receiver(
    listener: std::net::TcpListener,
    inbox: web::Data<Mutex<Inbox>>,
) -> actix_web::dev::ServerHandle {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(inbox.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    handle
}

const SECRET: &str = "a-webhook-secret-of-some-length";

#[actix_web::test]
async fn webhooks_survive_a_failing_restarted_receiver_and_a_restarted_pool() {
    let sim = sim().await;
    let tip = mine(&sim, 1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = web::Data::new(Mutex::new(Inbox {
        fail_first: 3,
        ..Inbox::default()
    }));
    let receiver = start_receiver(listener, inbox.clone());
    let hook = WebhookConfig {
        name: "wallet".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: Secret::new(SECRET),
        kinds: Vec::new(),
        // Chain names are case-insensitive: the configured chain is "VRSC".
        chain: Some("vrsc".into()),
        timeout_secs: 5,
        max_backoff_secs: 2,
    };
    let edit = config_edit(&sim);
    let hook_for_app = hook.clone();
    let with_hook = move |c| {
        let mut c: coinstaker::config::Config = edit(c);
        c.webhooks = vec![hook_for_app];
        c
    };
    let mut app = spawn_app_with(TestDb::new(true).await, with_hook, &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let start = store::events::last_id(&app.app_state.db).await.unwrap();

    for i in 0..3 {
        register(&sim, &format!("hooked{i}"), json!({}));
    }
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    // The first three attempts fail; then deliveries go through.
    let delivered = eventually(60, || async {
        (inbox.lock().unwrap().requests.len() >= 3 + 3).then_some(())
    })
    .await;
    assert!(
        delivered.is_some(),
        "deliveries resume after three failures"
    );

    // The receiver goes away; events keep coming; the pool restarts too.
    receiver.stop(true).await;
    for i in 3..6 {
        register(&sim, &format!("hooked{i}"), json!({}));
    }
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    let db_url_holder = std::mem::replace(&mut app.db, TestDb::new(true).await);
    app.stop().await;
    for i in 6..8 {
        register(&sim, &format!("hooked{i}"), json!({}));
    }
    mine(&sim, 1);
    let edit = config_edit(&sim);
    let hook_again = hook.clone();
    let app = spawn_app_with(
        db_url_holder,
        move |c| {
            let mut c = edit(c);
            c.webhooks = vec![hook_again];
            c
        },
        &sim.rpc_url,
    )
    .await;
    let tip = mine(&sim, 0);
    app.wait_processed(tip).await;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = start_receiver(listener, inbox.clone());

    let stored = stored_after(&app, start).await;
    assert_eq!(stored.len(), 8, "{stored:#?}");
    let ok = eventually(60, || async {
        let inbox = inbox.lock().unwrap();
        let got: std::collections::BTreeSet<&str> =
            inbox.requests.iter().map(|r| r.0.as_str()).collect();
        stored
            .iter()
            .all(|e| got.contains(e.id.to_string().as_str()))
            .then_some(())
    })
    .await;
    assert!(ok.is_some(), "every event is delivered");

    let requests = std::mem::take(&mut inbox.lock().unwrap().requests);
    let mut first_seen = Vec::new();
    for (cursor, timestamp, signature, body) in &requests {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature, &expected, "a valid signature on event {cursor}");
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            event["cursor"],
            cursor.as_str(),
            "the cursor header is the event's"
        );
        let stored_event = stored
            .iter()
            .find(|e| e.id.to_string() == *cursor)
            .expect("a stored event");
        assert_eq!(event["kind"], stored_event.event.kind.as_str());
        assert_eq!(
            event["identityAddress"].as_str(),
            stored_event.event.identity_address.as_deref()
        );
        if !first_seen.contains(cursor) {
            first_seen.push(cursor.clone());
        }
    }
    let in_order: Vec<String> = stored.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(first_seen, in_order, "first deliveries are in event order");
    assert!(
        requests[..3].iter().all(|r| r.0 == in_order[0]),
        "the first event was retried"
    );
    let state = store::webhooks::list(&app.app_state.db).await.unwrap();
    assert_eq!(state[0].cursor.to_string(), *in_order.last().unwrap());
    receiver.stop(true).await;
    let mut app = app;
    app.stop().await;
    sim.stop().await;
}
