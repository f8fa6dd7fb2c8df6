//! Two instances on one database: one leads (follows and pays the chain), the other serves
//! the API and takes over when the leader is killed — with no block processed twice and no
//! payment sent twice. And the lease's fence, on its own.

use std::time::{Duration, Instant};

use coinstaker::domain::PaymentStatus;
use coinstaker::store::{self, lease};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::payments::{earn, paid_on_chain};
use crate::support::{TestDb, eventually, mine};

#[tokio::test]
async fn a_fenced_write_fails_once_another_instance_took_the_lease() {
    let t = TestDb::new(true).await;
    let db = t.migrated().await;
    let a = lease::try_take(&db, "VRSC", "a", "http://a", None)
        .await
        .unwrap();
    assert_eq!(a, Some(1), "the first instance takes a lease nobody held");
    assert_eq!(
        lease::try_take(&db, "VRSC", "b", "http://b", None)
            .await
            .unwrap(),
        None,
        "a held lease is not taken without having watched it go silent"
    );
    let fence_a = lease::Fence {
        chain: "VRSC".into(),
        holder: "a".into(),
        epoch: 1,
    };
    fence_a.check(&db).await.unwrap();
    assert!(lease::renew(&db, "VRSC", "a", 1).await.unwrap());
    // A fenced write counts as a renewal too: both moved the heartbeat.
    // b watched the lease as it is now, and it stayed so: b takes it over.
    let seen = lease::get(&db, "VRSC").await.unwrap().unwrap();
    assert_eq!((seen.holder.as_str(), seen.heartbeat), ("a", 2));
    let b = lease::try_take(&db, "VRSC", "b", "http://b", Some(&seen))
        .await
        .unwrap();
    assert_eq!(b, Some(2));
    // a's writes and renewals now fail; b's pass.
    let err = fence_a.check(&db).await.unwrap_err();
    assert!(matches!(err, store::StoreError::LeaseLost(_)), "{err:?}");
    assert!(!lease::renew(&db, "VRSC", "a", 1).await.unwrap());
    let fence_b = lease::Fence {
        chain: "VRSC".into(),
        holder: "b".into(),
        epoch: 2,
    };
    fence_b.check(&db).await.unwrap();
    // A stale view (the heartbeat moved since) takes nothing.
    assert!(lease::renew(&db, "VRSC", "b", 2).await.unwrap());
    assert_eq!(
        lease::try_take(&db, "VRSC", "a", "http://a", Some(&seen))
            .await
            .unwrap(),
        None
    );
    // A clean stop releases it: anyone takes it at once.
    lease::release(&db, "VRSC", "b", 2).await.unwrap();
    assert_eq!(
        lease::try_take(&db, "VRSC", "a", "http://a", None)
            .await
            .unwrap(),
        Some(3)
    );
}

/// The `http://…` address a `coinstaker serve` child logged, waiting for it.
fn address_of(log: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(addr) = seen.iter().find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        }) {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "no address in:\n{}",
            seen.join("\n")
        );
        if let Ok(line) = log.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
}

/// Collects the lines logged so far.
fn drain(log: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>) {
    seen.extend(log.try_iter());
}

#[actix_web::test]
async fn a_follower_takes_over_when_the_leader_is_killed() {
    let sim = crate::support::sim().await;
    let (alice, bob, tip) = earn(&sim);
    let db = TestDb::new(true).await;
    let conn = db.connect().await;
    // 3 s keeps the test short; `CLUSTER_LEASE_SECS=15` measures the default (BENCHMARKS.md).
    let lease: u64 = std::env::var("CLUSTER_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let pool = |name: &str| {
        format!(
            "maturity = 100\nmin_payout = \"0.5\"\npayment_timeout_blocks = 25\npayout_interval_secs = 1\n[cluster]\ninstance = \"{name}\"\nlease_secs = {lease}\n"
        )
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // a starts first and leads; b starts when a is processing.
    let (mut leader, log_a) = crate::support::serve(dir_a.path(), &sim, &db.url, &pool("a"), None);
    let mut lines_a = Vec::new();
    let url_a = address_of(&log_a, &mut lines_a);
    assert!(
        crate::support::processes_up_to(&conn, tip, 60).await,
        "a processes the chain"
    );
    let (follower, log_b) = crate::support::serve(dir_b.path(), &sim, &db.url, &pool("b"), None);
    let mut lines_b = Vec::new();
    let url_b = address_of(&log_b, &mut lines_b);
    let client = coinstaker::net::client_builder().build().unwrap();

    // b knows a leads: a mutation names it; queries and the shared event log are served.
    let mutation = "mutation { subscribe(identity: \"alice@\") { status } }";
    let refused = eventually(30, || async {
        let reply = crate::support::post_graphql(&client, &url_b, mutation).await;
        (reply["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
            && reply["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("instance a leads") && m.contains(&url_a)))
        .then_some(reply)
    })
    .await;
    assert!(refused.is_some(), "the follower names the leader");
    let on_a = crate::support::post_graphql(&client, &url_a, mutation).await;
    assert!(
        on_a["errors"].is_null(),
        "the leader runs mutations: {on_a}"
    );
    let events = "{ events(first: 500) { nodes { cursor kind } } }";
    let (from_a, from_b) = (
        crate::support::post_graphql(&client, &url_a, events).await,
        crate::support::post_graphql(&client, &url_b, events).await,
    );
    assert!(
        from_a["data"]["events"]["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|e| e["kind"] == "STAKE_FOUND")),
        "{from_a}"
    );
    assert_eq!(from_a["data"], from_b["data"], "both serve the shared log");

    // a pays: kill it the moment a payment is on the books, before it can finish it.
    let planned = eventually(60, || async {
        mine(&sim, 1);
        let open = crate::support::open_payments(&conn).await.ok()?;
        (!open.is_empty()).then_some(())
    })
    .await;
    assert!(planned.is_some(), "a plans a payment");
    leader.kill().unwrap();
    let killed = Instant::now();
    let _ = leader.wait();

    // b takes over within the lease, follows the chain and settles the payment.
    let took_over = loop {
        drain(&log_b, &mut lines_b);
        if lines_b
            .iter()
            .any(|l| l.contains("instance b leads the chain"))
        {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "b never took over; its log:\n{}",
            lines_b.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("takeover after the leader was killed: {took_over:?} (lease {lease} s)");
    assert!(
        took_over < Duration::from_secs(30),
        "taken over in {took_over:?}"
    );
    let settled = eventually(120, || async {
        mine(&sim, 1);
        let a = store::ledger::balance(&conn, "VRSC", &alice).await.ok()?;
        let b = store::ledger::balance(&conn, "VRSC", &bob).await.ok()?;
        (a.paid.0 > 0 && b.paid.0 > 0 && a.in_flight.0 == 0 && b.in_flight.0 == 0).then_some(())
    })
    .await;
    drain(&log_b, &mut lines_b);
    assert!(
        settled.is_some(),
        "everyone is paid after the takeover; b's log:\n{}",
        lines_b.join("\n")
    );
    let reply = crate::support::post_graphql(&client, &url_b, mutation).await;
    assert!(reply["errors"].is_null(), "b runs mutations now: {reply}");
    // A stake found and matured after the takeover: b processes it, once.
    sim.call("sim_stake", json!([bob])).unwrap();
    let tip = mine(&sim, 101);
    assert!(
        crate::support::processes_up_to(&conn, tip, 60).await,
        "b follows the chain"
    );
    // Settled: no payment open and nothing left to pay (the second stake's credits are above
    // the minimum payout, so its payment may be planned only after a first look finds none
    // open; then its amounts would still be in flight).
    let settled = eventually(60, || async {
        mine(&sim, 1);
        let open = crate::support::open_payments(&conn).await.ok()?;
        let mut done = open.is_empty();
        for who in [&alice, &bob] {
            let b = store::ledger::balance(&conn, "VRSC", who).await.ok()?;
            done &= b.in_flight.0 == 0 && b.pending.0 < 50_000_000;
        }
        done.then_some(())
    })
    .await;
    assert!(settled.is_some(), "the payments after the takeover settle");

    let confirmed = store::payments::with_status(&conn, "VRSC", &[PaymentStatus::Confirmed])
        .await
        .unwrap();
    for who in [&alice, &bob] {
        let b = store::ledger::balance(&conn, "VRSC", who).await.unwrap();
        assert_eq!(b.in_flight.0, 0);
        assert_eq!(
            b.paid.0 + b.pending.0,
            b.credited.0,
            "credited = paid + pending"
        );
        let payments = confirmed
            .iter()
            .filter(|p| p.outputs.iter().any(|(a, _)| a == who))
            .count();
        assert_eq!(
            paid_on_chain(&sim, who),
            (b.paid.0, payments),
            "each payment once on chain, as in the database"
        );
    }
    assert_eq!(
        store::ledger::check_snapshot(&conn, "VRSC").await.unwrap(),
        Ok(())
    );
    // No block processed twice: each stake found and matured once (two stakes: one before
    // the takeover, one after); each payment announced once.
    let all = crate::support::post_graphql(
        &client,
        &url_b,
        "{ events(first: 500) { nodes { kind blockHash payment { id } } } }",
    )
    .await;
    let mut seen = std::collections::HashSet::new();
    let mut matured = 0;
    for e in all["data"]["events"]["nodes"].as_array().unwrap() {
        let key = match e["kind"].as_str().unwrap_or_default() {
            "STAKE_FOUND" | "STAKE_MATURED" => e["blockHash"].to_string(),
            "PAYMENT_SENT" => e["payment"]["id"].to_string(),
            _ => continue,
        };
        matured += usize::from(e["kind"] == "STAKE_MATURED");
        assert!(
            seen.insert((e["kind"].to_string(), key)),
            "{e} twice: {all}"
        );
    }
    assert_eq!(matured, 2, "{all}");
    let sent = store::payments::with_status(&conn, "VRSC", &[PaymentStatus::Confirmed])
        .await
        .unwrap();
    let announced = seen.iter().filter(|(k, _)| k == "\"PAYMENT_SENT\"").count();
    assert_eq!(announced, sent.len(), "one PAYMENT_SENT per payment: {all}");
    drop(follower);
    sim.stop().await;
}

/// A write transaction that holds the lease row (on SQLite: the database) for several lease
/// durations, as the block where thousands of subscribers become eligible at once does, is no
/// reason for the leader to step down: stepping down aborted that very transaction, which
/// was then retried and aborted again, for ever. The leader keeps the lease, leads once, and
/// goes on with the chain.
#[actix_web::test]
async fn a_leader_waiting_behind_a_long_write_transaction_keeps_the_lease() {
    let sim = crate::support::sim().await;
    let db = TestDb::new(true).await;
    let conn = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let (_pool, log) = crate::support::serve(
        dir.path(),
        &sim,
        &db.url,
        "[cluster]\ninstance = \"a\"\nlease_secs = 3\n",
        None,
    );
    let mut lines = Vec::new();
    address_of(&log, &mut lines);
    let tip = mine(&sim, 3);
    assert!(
        crate::support::processes_up_to(&conn, tip, 60).await,
        "the pool processes the chain"
    );
    // Three lease durations behind a transaction that holds the lease row.
    let txn = store::begin_write(&conn).await.unwrap();
    txn.execute_unprepared("UPDATE leader_lease SET writes = writes WHERE chain = 'VRSC'")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    txn.commit().await.unwrap();
    let tip = mine(&sim, 2);
    assert!(
        crate::support::processes_up_to(&conn, tip, 60).await,
        "the pool goes on with the chain"
    );
    drain(&log, &mut lines);
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        (
            count("stepping down") + count("lost the lease"),
            count("leads the chain")
        ),
        (0, 1),
        "the leader never stepped down: {lines:#?}"
    );
    assert!(
        count("the lease renewal got no answer") > 0,
        "the renewals did wait: {lines:#?}"
    );
    let lease = lease::get(&conn, "VRSC").await.unwrap().unwrap();
    assert_eq!(lease.holder, "a");
}
