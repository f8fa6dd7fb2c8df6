//! The books under what a real verusd and a real operator do (issue: money safety): a daemon
//! that reindexes, a send the wallet recorded although the mempool refused it, a chain that
//! left deeper than the reorganisation limit, admin actions around reorganisations, a PBaaS
//! chain's coinbase maturity, and authorities and outputs of identities that come and go.
//! Each test fails without the change it guards.

use coinstaker::domain::{PaymentStatus, Sats, StakeStatus, SubscriberStatus};
use coinstaker::store;
use serde_json::{Value, json};

use crate::payments::{config_edit, earn, paid_on_chain};
use crate::stakes::{outputs_of, stake, work};
use crate::support::{
    ADMIN_TOKEN, TestApp, TestDb, business_rows, eventually, mine, pool_for, register, sim,
    sim_with, spawn_app_with,
};

async fn health(app: &TestApp) -> (u16, Value) {
    let (status, body) = app.get("/healthz").await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn kinds_of(app: &TestApp, identity: &str) -> Vec<String> {
    let filter = store::events::EventFilter {
        identity_address: Some(identity.to_owned()),
        ..Default::default()
    };
    store::events::list(&app.app_state.db, &filter, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind.to_string())
        .collect()
}

#[actix_web::test]
async fn a_reindexing_daemon_is_waited_for_and_nothing_is_undone() {
    let sim = sim().await;
    let (_alice, bob, _) = earn(&sim); // a stake at 170, matured at 269
    sim.call("sim_stake", json!([bob])).unwrap(); // a stake still maturing
    let tip = mine(&sim, 5);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let db = app.app_state.db.clone();
    let before = business_rows(&db).await;
    let stakes_before = (
        store::stakes::with_status(&db, "VRSC", StakeStatus::Matured)
            .await
            .unwrap(),
        store::stakes::with_status(&db, "VRSC", StakeStatus::Maturing)
            .await
            .unwrap(),
    );
    assert_eq!((stakes_before.0.len(), stakes_before.1.len()), (1, 1));

    // verusd -reindex: its tip drops to 112 and climbs back on the same blocks.
    sim.call("sim_reindex", json!([112])).unwrap();
    let seen = eventually(30, || async {
        let (code, body) = health(&app).await;
        (body["chains"][0]["sync"]["state"] == "behind").then_some((code, body))
    })
    .await;
    let (code, body) = seen.expect("/healthz says the daemon is behind");
    assert_eq!(code, 200, "behind is degraded, not down: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        body["chains"][0]["sync"],
        json!({"state": "behind", "daemonTip": 112, "processedHeight": tip}),
        "{body}"
    );
    let reply = app
        .graphql("{ pool { syncState syncReason processedHeight } }")
        .await;
    assert_eq!(
        reply["data"]["pool"],
        json!({"syncState": "BEHIND", "syncReason": format!("daemon behind the pool: tip 112, processed {tip}"), "processedHeight": tip}),
        "{reply}"
    );
    // Climbing back, still behind: the pool waits and changes nothing at all.
    sim.call("sim_climb", json!([100])).unwrap();
    let climbed = eventually(30, || async {
        let (_, body) = health(&app).await;
        (body["chains"][0]["sync"]["daemonTip"] == 212).then_some(())
    })
    .await;
    assert!(climbed.is_some(), "the pool follows the daemon's progress");
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains(&format!(
            "coinstaker_daemon_behind_blocks{{chain=\"VRSC\"}} {}",
            tip - 212
        )),
        "the behind metric: {metrics}"
    );
    assert_eq!(
        business_rows(&db).await,
        before,
        "nothing undone, no event, while the daemon is behind"
    );

    // Caught up: new blocks are processed as if nothing happened.
    sim.call("sim_climb", json!([1000])).unwrap();
    let tip = mine(&sim, 2);
    app.wait_processed(tip).await;
    let (code, body) = health(&app).await;
    assert_eq!((code, &body["status"]), (200, &json!("ok")), "{body}");
    assert_eq!(body["chains"][0]["sync"], json!({"state": "following"}));
    let stale = store::events::list(
        &db,
        &store::events::EventFilter {
            kinds: vec![coinstaker::domain::EventKind::StakeStale],
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert!(stale.is_empty(), "no stake went stale: {stale:?}");
    assert_eq!(
        store::stakes::with_status(&db, "VRSC", StakeStatus::Matured)
            .await
            .unwrap(),
        stakes_before.0,
        "the matured stake and its credits are untouched"
    );
    app.stop().await;
    sim.stop().await;
}

/// A payout whose `sendcurrency` operation ends as `status` while the wallet holds the
/// transaction the mempool refused; the wallet offers it again `rebroadcast_after` blocks later
/// (`None`: never). Payout cycles run at every block meanwhile. Everyone ends paid exactly
/// once, on chain and in the books.
async fn refused_send(status: &str, rebroadcast_after: Option<i64>) {
    let sim = sim().await;
    let (alice, bob, tip) = earn(&sim);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let db = app.app_state.db.clone();
    sim.call(
        "sim_failnextop",
        json!([{"status": status, "rebroadcast_after": rebroadcast_after}]),
    )
    .unwrap();
    let reply = app
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id status } }")
        .await;
    assert_eq!(
        reply["data"]["runPayouts"][0]["status"], "SUBMITTED",
        "{reply}"
    );
    // Cycles at every block: none may pay the same balances again while the first
    // payment's outcome is unknown.
    let settled = eventually(120, || async {
        let tip = mine(&sim, 1);
        app.wait_processed(tip).await;
        let reply = app
            .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id } }")
            .await;
        assert!(reply["errors"].is_null(), "{reply}");
        let open = crate::support::open_payments(&db).await.unwrap();
        let owed: i64 = store::ledger::pending_balances(&db, "VRSC")
            .await
            .unwrap()
            .iter()
            .map(|(_, s)| s.0)
            .sum();
        (open.is_empty() && owed == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "every payment settles");
    for who in [&alice, &bob] {
        let b = store::ledger::balance(&db, "VRSC", who).await.unwrap();
        assert_eq!(b.paid, b.credited, "{status}: {who} paid what was credited");
        assert_eq!(
            paid_on_chain(&sim, who).0,
            b.paid.0,
            "{status}: {who} received exactly its credit on chain, once"
        );
    }
    let failed = store::payments::with_status(&db, "VRSC", &[PaymentStatus::Failed])
        .await
        .unwrap();
    assert_eq!(
        failed.len(),
        usize::from(rebroadcast_after.is_none()),
        "{status}: only a transaction that never came back fails, after its expiry: {failed:?}"
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_failed_operation_whose_transaction_comes_back_is_paid_once() {
    refused_send("failed", Some(3)).await;
}

#[actix_web::test]
async fn a_successful_operation_the_mempool_refused_is_paid_once() {
    refused_send("success", Some(3)).await;
}

#[actix_web::test]
async fn a_refused_transaction_that_never_comes_back_fails_after_its_expiry_and_is_paid_once() {
    refused_send("failed", None).await;
}

#[actix_web::test]
async fn a_ban_survives_the_reorganisation_of_its_block() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    let bob = register(&sim, "bob", json!({}));
    sim.call("sim_fund", json!([alice, "2000"])).unwrap();
    sim.call("sim_fund", json!([bob, "1000"])).unwrap();
    let tip = mine(&sim, 160); // both ACTIVE from 151
    let edit = pool_for(&sim, 1);
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut c = edit(c);
            c.chains[0].maturity = 100;
            c
        },
        &sim.rpc_url,
    )
    .await;
    app.wait_processed(tip).await;
    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { banSubscriber(identity: \"alice@\", banned: true) { status } }",
        )
        .await;
    assert_eq!(
        reply["data"]["banSubscriber"]["status"], "BANNED",
        "{reply}"
    );
    let kinds = kinds_of(&app, &alice).await;
    assert_eq!(kinds, ["SUBSCRIBER_JOINED", "SUBSCRIBER_LEFT"], "{kinds:?}");
    // The ban applies from 161, the first height the pool had not processed; that block and
    // the one below it are reorganised away.
    let tip = mine(&sim, 2);
    app.wait_processed(tip).await;
    sim.call("sim_reorg", json!([3])).unwrap();
    let tip = mine(&sim, 1);
    app.wait_processed(tip).await;
    assert_eq!(
        store::subscribers::get(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap()
            .map(|s| s.status),
        Some(SubscriberStatus::Banned),
        "still banned"
    );
    assert_eq!(
        kinds_of(&app, &alice).await,
        kinds,
        "no event: she was never back in"
    );
    // She earns nothing from the ban on: bob's stake closes a round from 1, her work stops
    // at 160.
    let (hash, height) = stake(&sim, &bob);
    let tip = mine(&sim, 100);
    app.wait_processed(tip).await;
    let s = store::stakes::get(&app.app_state.db, "VRSC", &hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, StakeStatus::Matured);
    let credits = store::stakes::credits_of_stake(&app.app_state.db, s.id)
        .await
        .unwrap();
    let of = |who: &str| {
        credits
            .iter()
            .find(|c| c.identity_address == who)
            .map(|c| c.work.0)
    };
    assert_eq!(
        of(&alice),
        Some(work(&outputs_of(&sim, &alice), 151, 1, 160))
    );
    assert_eq!(
        of(&bob),
        Some(work(&outputs_of(&sim, &bob), 151, 1, height))
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_chain_that_left_deeper_than_the_limit_is_not_followed_and_nothing_is_undone() {
    let ours = sim().await;
    let tip = mine(&ours, 120);
    let db = TestDb::new(true).await;
    let mut app = spawn_app_with(db, pool_for(&ours, 1), &ours.rpc_url).await;
    app.wait_processed(tip).await;
    app.stop().await;
    let db = std::mem::replace(&mut app.db, TestDb::new(false).await);
    let conn = db.connect().await;
    let before = business_rows(&conn).await;
    // The same pool, now pointed at a daemon on another chain (another genesis) 130 blocks
    // long: no block of it is the pool's.
    let other = sim_with(verusd_sim::Params {
        seed: 7,
        ..verusd_sim::Params::default()
    })
    .await;
    mine(&other, 130);
    let app = spawn_app_with(db, pool_for(&other, 1), &other.rpc_url).await;
    let stopped = eventually(30, || async {
        let (code, body) = health(&app).await;
        (body["chains"][0]["sync"]["state"] == "stopped").then_some((code, body))
    })
    .await;
    let (code, body) = stopped.expect("the pool stops following that chain");
    assert_eq!(code, 503, "{body}");
    assert!(
        body["chains"][0]["sync"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("more than 99 blocks"),
        "{body}"
    );
    let reply = app.graphql("{ pool { syncState syncReason } }").await;
    assert_eq!(reply["data"]["pool"]["syncState"], "STOPPED", "{reply}");
    // Some more polls: still nothing undone (the limit holds on every retry).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(business_rows(&conn).await, before, "nothing undone");
    let mut app = app;
    app.stop().await;
    ours.stop().await;
    other.stop().await;
}

#[actix_web::test]
async fn a_pbaas_chain_uses_its_own_coinbase_maturity() {
    // A chain with 30-second blocks: verusd's coinbase maturity there is 149 blocks.
    let params = verusd_sim::Params {
        block_time: 30,
        coinbase_maturity: 149,
        ..verusd_sim::Params::default()
    };
    let sim = sim_with(params).await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "1000"])).unwrap();
    mine(&sim, 160);
    // maturity = 120 is enough on VRSC, not here: the chain is refused, and says why.
    let edit = pool_for(&sim, 1);
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut c = edit(c);
            c.chains[0].maturity = 120;
            c
        },
        &sim.rpc_url,
    )
    .await;
    let refused = eventually(30, || async {
        let (code, body) = health(&app).await;
        body["chains"][0]["daemon"]["refused"]
            .as_str()
            .map(|r| (code, r.to_owned()))
    })
    .await;
    let (code, reason) = refused.expect("the chain is refused");
    assert_eq!(code, 503);
    assert!(reason.contains("149"), "{reason}");
    app.stop().await;

    // With maturity 150 it runs, and a reward spent 120 blocks after its stake (allowed on
    // VRSC, not before 149 here) was taken by a StakeGuard proof: nobody is credited.
    let edit = pool_for(&sim, 1);
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut c = edit(c);
            c.chains[0].maturity = 150;
            c
        },
        &sim.rpc_url,
    )
    .await;
    let (hash, _) = stake(&sim, &alice);
    mine(&sim, 119);
    sim.call("sim_stakeguard", json!([hash])).unwrap();
    let tip = mine(&sim, 40);
    app.wait_processed(tip).await;
    let s = store::stakes::get(&app.app_state.db, "VRSC", &hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, StakeStatus::StakeGuard, "{s:?}");
    assert_eq!(
        store::ledger::pool_totals(&app.app_state.db, "VRSC")
            .await
            .unwrap()
            .credited_total,
        Sats(0)
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn an_authority_that_adds_the_pool_address_makes_its_identity_leave() {
    let sim = sim().await;
    // Carol, alice's revocation authority, does not list the pool's address at first.
    let carol = register(
        &sim,
        "carol",
        json!({"primaryaddresses": [verusd_sim::ids::r_address("own:carol")]}),
    );
    let alice = register(&sim, "alice", json!({"revocationauthority": carol}));
    sim.call("sim_fund", json!([alice, "100"])).unwrap();
    mine(&sim, 3);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(3).await;
    assert_eq!(
        store::subscribers::get(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap()
            .map(|s| s.status),
        Some(SubscriberStatus::CoolingDown)
    );
    // Carol adds the pool's address: the pool could now revoke alice's identity.
    let pool_r = sim.call("sim_state", json!([])).unwrap()["poolprimaryaddress"].clone();
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "carol@", "primaryaddresses": [verusd_sim::ids::r_address("own:carol"), pool_r]}]),
    )
    .unwrap();
    mine(&sim, 1);
    app.wait_processed(4).await;
    let row = store::subscribers::get(&app.app_state.db, "VRSC", &alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, SubscriberStatus::Left, "{row:?}");
    assert!(
        row.unmet.iter().any(|u| u.contains("revocation")),
        "{:?}",
        row.unmet
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn an_identity_that_comes_back_keeps_the_outputs_of_a_maturing_round() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    let bob = register(&sim, "bob", json!({}));
    let pool_r = sim.call("sim_state", json!([])).unwrap()["poolprimaryaddress"].clone();
    sim.call("sim_fund", json!([alice, "600", 2])).unwrap();
    sim.call("sim_fund", json!([bob, "1000"])).unwrap();
    mine(&sim, 160); // both ACTIVE from 151
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        {
            let edit = pool_for(&sim, 1);
            move |c| {
                let mut c = edit(c);
                c.chains[0].maturity = 100;
                c
            }
        },
        &sim.rpc_url,
    )
    .await;
    app.wait_processed(160).await;
    // Alice leaves at 161 (drops the pool's address), spends one of her outputs while she is
    // away, and comes back at 165.
    let own = verusd_sim::ids::r_address("own:alice");
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "alice@", "primaryaddresses": [own]}]),
    )
    .unwrap();
    mine(&sim, 1);
    let spent = outputs_of(&sim, &alice)[0];
    let txid = sim.with_node(|n| {
        n.chain
            .deltas_of(&alice)
            .iter()
            .find(|d| d.satoshis == spent.0 && d.height == spent.1)
            .map(|d| (d.txid.clone(), d.index))
            .unwrap()
    });
    sim.call("sim_spend", json!([txid.0, txid.1])).unwrap();
    mine(&sim, 1);
    sim.call(
        "sim_updateidentity",
        json!([{"identity": "alice@", "primaryaddresses": [own, pool_r]}]),
    )
    .unwrap();
    mine(&sim, 3);
    // Bob's stake closes the round from 1: alice's work over 151..=160 counts both outputs.
    let (hash, height) = stake(&sim, &bob);
    let tip = mine(&sim, 100);
    app.wait_processed(tip).await;
    let s = store::stakes::get(&app.app_state.db, "VRSC", &hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, StakeStatus::Matured);
    let credits = store::stakes::credits_of_stake(&app.app_state.db, s.id)
        .await
        .unwrap();
    let alice_work = credits
        .iter()
        .find(|c| c.identity_address == alice)
        .map(|c| c.work.0);
    assert_eq!(
        alice_work,
        Some(work(&outputs_of(&sim, &alice), 151, 1, 160)),
        "her work before she left, from both outputs"
    );
    assert!(height > 165);
    app.stop().await;
    sim.stop().await;
}
