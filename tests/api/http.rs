//! The HTTP surface of a running application: /healthz, /graphql, /metrics, WebSocket upgrade.

use std::io::{Read, Write};

use serde_json::json;

use crate::support::{closed_port_url, eventually, register, sim, spawn_app};

#[actix_web::test]
async fn without_a_daemon_the_server_runs_and_says_so() {
    let mut app = spawn_app(&closed_port_url()).await;
    let (status, body) = eventually(10, || async {
        let (status, body) = app.get("/healthz").await;
        body.contains("daemon unreachable")
            .then_some((status, body))
    })
    .await
    .expect("/healthz reports the unreachable daemon");
    assert_eq!(status, 503);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "unavailable");
    assert_eq!(report["database"]["up"], true);
    assert_eq!(report["chains"][0]["daemon"]["up"], false);

    // The API still answers from config and database.
    let reply = app
        .graphql("{ pools { chain primaryAddress feePercent } }")
        .await;
    assert_eq!(
        reply,
        json!({"data": {"pools": [{"chain": "VRSC", "primaryAddress": "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK", "feePercent": "3.33"}]}})
    );
    app.stop().await;
}

#[actix_web::test]
async fn healthy_daemon_and_pool_fields() {
    let daemon = sim().await;
    daemon.with_node(|n| n.chain.generate(12));
    // Stakers outside the pool: the network's staking supply the daemon reports.
    daemon
        .call("sim_setexternalsupply", json!(["40000"]))
        .unwrap();
    assert_eq!(
        daemon.call("getmininginfo", json!([])).unwrap()["stakingsupply"].as_f64(),
        Some(40000.0)
    );
    let mut app = spawn_app(&daemon.rpc_url).await;
    let body = eventually(10, || async {
        let (status, body) = app.get("/healthz").await;
        (status == 200).then_some(body)
    })
    .await
    .expect("/healthz turns 200 once the daemon answers");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["chains"][0]["daemon"]["tipHeight"], 12);
    // The first start processes from the tip (12) and learns the chain's id from getinfo.
    app.wait_processed(12).await;

    let reply = app
        .graphql(
            "{ pool(chain: \"vrsc\") { chain chainId poolIdentity minPayout maturity tipHeight processedHeight subscriberCount
               stakingSupply networkStakingSupply feesEarned totalPaid pendingTotal payoutsPaused pausedReason
               conditions { minUnlockDelay requireSeparateRevokeRecover maxPrimaryAddresses maxUtxos utxoCountMin } } }",
        )
        .await;
    assert_eq!(reply.get("errors"), None, "{reply}");
    let pool = &reply["data"]["pool"];
    assert_eq!(
        pool["chainId"], "iJhCezBExJHvtyH3fGhNnt2NhU4Ztkf2yq",
        "the daemon's chain id"
    );
    assert_eq!(pool["poolIdentity"], "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e");
    assert_eq!(pool["minPayout"], "2.50000000");
    assert_eq!(pool["maturity"], 150);
    assert_eq!(pool["tipHeight"], 12);
    assert_eq!(pool["processedHeight"], 12);
    assert_eq!(pool["subscriberCount"], 0);
    assert_eq!(pool["stakingSupply"], "0.00000000");
    // Kept with the block processed at the tip (live).
    assert_eq!(pool["networkStakingSupply"], "40000.00000000");
    assert_eq!(pool["payoutsPaused"], false);
    assert_eq!(
        pool["conditions"],
        json!({"minUnlockDelay": 1440, "requireSeparateRevokeRecover": true, "maxPrimaryAddresses": 25, "maxUtxos": 0, "utxoCountMin": "1.00000000"})
    );
    // By i-address too; an unknown chain is null.
    let reply = app.graphql("{ a: pool(chain: \"iJhCezBExJHvtyH3fGhNnt2NhU4Ztkf2yq\") { chain } b: pool(chain: \"BTC\") { chain } }").await;
    assert_eq!(reply, json!({"data": {"a": {"chain": "VRSC"}, "b": null}}));

    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("coinstaker_daemon_up{chain=\"VRSC\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coinstaker_daemon_tip_height{chain=\"VRSC\"} 12"),
        "{metrics}"
    );
    assert!(metrics.contains("coinstaker_database_up 1"), "{metrics}");

    // The daemon restarts and warms up: health turns 503 with the reason, and back.
    daemon.call("sim_restart", json!([2])).unwrap();
    let body = eventually(10, || async {
        let (status, body) = app.get("/healthz").await;
        (status == 503 && body.contains("warming up")).then_some(body)
    })
    .await;
    assert!(body.is_some(), "a warming-up daemon is reported as down");
    let back = eventually(10, || async {
        (app.get("/healthz").await.0 == 200).then_some(())
    })
    .await;
    assert!(back.is_some(), "health recovers when the daemon does");
    app.stop().await;
    daemon.stop().await;
}

#[actix_web::test]
async fn wrong_rpc_password_is_reported() {
    let daemon = sim().await;
    let mut app = crate::support::spawn_app_with(
        crate::support::TestDb::new(true).await,
        |mut c| {
            c.chains[0].rpc_password = Some(coinstaker::config::Secret::new("wrong"));
            c
        },
        &daemon.rpc_url,
    )
    .await;
    let body = eventually(10, || async {
        let (_, body) = app.get("/healthz").await;
        body.contains("RPC authentication failed").then_some(body)
    })
    .await;
    assert!(body.is_some(), "health names the authentication failure");
    app.stop().await;
    daemon.stop().await;
}

#[actix_web::test]
async fn graphql_websocket_upgrade_negotiates_both_protocols() {
    let mut app = spawn_app(&closed_port_url()).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let addr = addr.clone();
        let response = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            write!(
                stream,
                "GET /graphql HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
            )
            .unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).to_lowercase()
        })
        .await
        .unwrap();
        assert!(response.starts_with("http/1.1 101"), "{response}");
        assert!(
            response.contains(&format!("sec-websocket-protocol: {protocol}")),
            "{response}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn graphiql_is_served() {
    let mut app = spawn_app(&closed_port_url()).await;
    let (status, body) = app.get("/graphiql").await;
    assert_eq!(status, 200);
    assert!(body.contains("graphiql"), "the GraphiQL page");
    app.stop().await;
}

#[actix_web::test]
async fn anonymous_queries_share_answers_until_the_books_change() {
    let daemon = sim().await;
    register(&daemon, "alice", json!({}));
    daemon.with_node(|n| n.chain.generate(12));
    let mut app = spawn_app(&daemon.rpc_url).await;
    app.wait_processed(12).await;
    let query = "{ pool { processedHeight tipHeight } }";
    let first = eventually(10, || async {
        let reply = app.graphql(query).await;
        (reply["data"]["pool"]["tipHeight"] == 12).then_some(reply)
    })
    .await
    .expect("the probe saw the tip");
    assert_eq!(first["data"]["pool"]["processedHeight"], 12, "{first}");
    let kept = app.app_state.responses.len();
    assert!(kept >= 1, "a plain anonymous query is kept");
    assert_eq!(app.graphql(query).await, first);

    // Never kept: a daemon call, a mutation, an answer with an error, a batch.
    let check = app
        .graphql("{ checkIdentity(identity: \"alice@\") { eligible } }")
        .await;
    assert!(
        check["errors"].is_null(),
        "an answer, not an error: {check}"
    );
    app.graphql("mutation { subscribe(identity: \"nobody@\") { eligible } }")
        .await;
    let wrong = app.graphql("{ pool { noSuchField } }").await;
    assert!(wrong.get("errors").is_some(), "{wrong}");
    let batch = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!([{"query": "{ pools { chain } }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    assert_eq!(app.app_state.responses.len(), kept);

    // A new block changes the books: the same body gets the new answer.
    daemon.with_node(|n| n.chain.generate(1));
    app.wait_processed(13).await;
    let after = eventually(10, || async {
        let reply = app.graphql(query).await;
        (reply["data"]["pool"]["processedHeight"] == 13 && reply["data"]["pool"]["tipHeight"] == 13)
            .then_some(reply)
    })
    .await;
    assert!(after.is_some(), "the answer follows the block");
    app.stop().await;
}

/// The CPUs a thread of this process may run on, from `/proc/self/task/<tid>/status`
/// (`Cpus_allowed_list: 0-1,3`), and its nice value, for every thread whose name starts
/// with `prefix`.
#[cfg(target_os = "linux")]
fn threads_cpus_and_nice(prefix: &str) -> Vec<(Vec<usize>, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(task.path().join("stat")),
            std::fs::read_to_string(task.path().join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        // Fields after the name start at field 3 (state); nice is field 19.
        let nice = stat[close + 1..].split_whitespace().nth(19 - 3).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        let mut cpus = Vec::new();
        for part in list.split(',') {
            match part.split_once('-') {
                Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
                None => cpus.push(part.parse().unwrap()),
            }
        }
        out.push((cpus, nice.parse().unwrap()));
    }
    out
}

/// `affinity.actors_cpu`: the thread that builds the application (the actors') keeps that
/// CPU, and so do the threads it starts; the HTTP workers and the API's SQLite connections
/// run on the others, at their lowered priority.
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn the_actors_keep_their_cpu_and_the_api_runs_on_the_others() {
    use coinstaker::priority::{allowed_cpus, current_nice, pin_current_thread};
    let all = allowed_cpus().unwrap();
    let cpu = *all.last().unwrap();
    let own = current_nice().unwrap();
    // 6: no other test's threads have it (the apps' workers lower theirs by 10, a store
    // test by 7).
    let lowered = (own + 6).min(19);
    assert!(lowered > own);
    let db = crate::support::TestDb::new(true).await;
    let sqlite = db.backend() == "sqlite";
    let mut app = crate::support::spawn_app_with(
        db,
        |mut c| {
            c.affinity.actors_cpu = Some(cpu);
            c.http.worker_nice = 6;
            c
        },
        &closed_port_url(),
    )
    .await;
    let kept = allowed_cpus().unwrap();
    let others: Vec<usize> = all.iter().copied().filter(|&c| c != cpu).collect();
    // The API answers (a worker thread has started).
    let (status, _) = app.get("/healthz").await;
    assert!(status == 200 || status == 503, "{status}");
    let workers: Vec<_> = threads_cpus_and_nice("actix-rt")
        .into_iter()
        .filter(|(_, nice)| *nice == lowered)
        .collect();
    let api_connections: Vec<_> = threads_cpus_and_nice("sqlx-sqlite-wor")
        .into_iter()
        .filter(|(_, nice)| *nice == lowered)
        .collect();
    // The actors' own connections were opened by the actors' thread, after it kept its CPU.
    let actors_connections = threads_cpus_and_nice("sqlx-sqlite-wor")
        .into_iter()
        .filter(|(cpus, nice)| *nice == own && *cpus == vec![cpu])
        .count();
    app.stop().await;
    // Whatever happens below, this thread goes back to every CPU.
    pin_current_thread(&all).unwrap();
    if others.is_empty() {
        // One CPU: nothing to keep apart, nothing moved.
        assert_eq!(kept, all);
        assert!(workers.iter().all(|(cpus, _)| *cpus == all), "{workers:?}");
        return;
    }
    assert_eq!(kept, vec![cpu], "the actors' thread keeps its CPU");
    assert!(
        !workers.is_empty(),
        "the HTTP workers run at their priority"
    );
    for (cpus, _) in &workers {
        assert_eq!(*cpus, others, "an HTTP worker runs off the actors' CPU");
    }
    if sqlite {
        assert!(!api_connections.is_empty());
        for (cpus, _) in &api_connections {
            assert_eq!(*cpus, others, "an API connection runs off the actors' CPU");
        }
        assert!(
            actors_connections > 0,
            "the actors' connections keep their CPU"
        );
    }
}
