//! Payments against the simulated daemon: a cycle from plan to confirmation, and the process
//! really killed at every point of the state machine, or the daemon restarted — each ending
//! with every balance paid exactly once, on chain and in the database.

use std::process::Command;

use coinstaker::domain::{PaymentStatus, Sats};
use coinstaker::store;
use serde_json::json;

use crate::support::{
    ADMIN_TOKEN, TestDb, eventually, mine, pool_for, register, sim, spawn_app_with,
};

/// Alice and Bob earn from one matured stake. Returns their addresses and the tip.
pub(crate) fn earn(sim: &verusd_sim::Simulator) -> (String, String, i64) {
    let alice = register(sim, "alice", json!({}));
    let bob = register(sim, "bob", json!({}));
    sim.call("sim_fund", json!([alice, "3000"])).unwrap();
    sim.call("sim_fund", json!([bob, "1000"])).unwrap();
    mine(sim, 169);
    sim.call("sim_stake", json!([alice])).unwrap(); // 170
    let tip = mine(sim, 100); // matured at 269, its reward spendable at 270
    (alice, bob, tip)
}

/// Σ of what the pool identity's transactions paid to `who`, and how many such transactions.
pub(crate) fn paid_on_chain(sim: &verusd_sim::Simulator, who: &str) -> (i64, usize) {
    let pool = sim.call("sim_state", json!([])).unwrap()["poolidentity"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.with_node(|n| {
        let mut total = 0;
        let mut count = 0;
        for d in n.chain.deltas_of(who).iter().filter(|d| d.satoshis > 0) {
            let Some(tx) = n.chain.tx(&d.txid) else {
                continue;
            };
            let from_pool = tx.inputs.iter().any(|op| {
                n.chain
                    .prevout(op)
                    .and_then(|o| o.script.first_destination())
                    .as_deref()
                    == Some(pool.as_str())
            });
            if from_pool {
                total += d.satoshis;
                count += 1;
            }
        }
        (total, count)
    })
}

pub(crate) fn config_edit(
    sim: &verusd_sim::Simulator,
) -> impl FnOnce(coinstaker::config::Config) -> coinstaker::config::Config + use<> {
    let edit = pool_for(sim, 1);
    move |c| {
        let mut c = edit(c);
        c.chains[0].maturity = 100;
        c.chains[0].min_payout = Sats(50_000_000);
        c.chains[0].payment_timeout_blocks = 25;
        c
    }
}

#[actix_web::test]
async fn a_payout_cycle_pays_everyone_once() {
    let sim = sim().await;
    let (alice, bob, tip) = earn(&sim);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let db = &app.app_state.db;
    let owed = [
        store::ledger::balance(db, "VRSC", &alice)
            .await
            .unwrap()
            .pending,
        store::ledger::balance(db, "VRSC", &bob)
            .await
            .unwrap()
            .pending,
    ];
    assert!(owed.iter().all(|o| o.0 > 50_000_000), "{owed:?}");

    let state_before = store::settings::payout_state(db, "VRSC").await.unwrap();
    let reply = app.graphql_as(ADMIN_TOKEN, "mutation { runPayouts(dryRun: true) { id status total outputs { identityAddress amount } } }").await;
    let plan = &reply["data"]["runPayouts"];
    assert_eq!(plan[0]["status"], "PLANNED", "{reply}");
    assert_eq!(plan[0]["outputs"].as_array().map(Vec::len), Some(2));
    assert!(
        store::payments::list(db, "VRSC", None, None, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a dry run stores nothing"
    );
    assert!(
        store::audit::recent(db, 10).await.unwrap().is_empty(),
        "a dry run changes nothing at all, not even the audit log"
    );
    assert_eq!(
        store::settings::payout_state(db, "VRSC").await.unwrap(),
        state_before,
        "nor the payout state"
    );

    let reply = app
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id status total } }")
        .await;
    assert_eq!(
        reply["data"]["runPayouts"][0]["status"], "SUBMITTED",
        "{reply}"
    );
    let pending = store::ledger::balance(db, "VRSC", &alice).await.unwrap();
    assert_eq!(
        (pending.pending, pending.in_flight),
        (Sats(0), owed[0]),
        "the balance moved into the payment"
    );
    // The API shows it in flight: nothing vanishes between pendingBalance and paidTotal.
    let reply = app
        .graphql(&format!(
            "{{ subscriber(identity: \"{alice}\") {{ pendingBalance inFlight paidTotal }} }}"
        ))
        .await;
    assert_eq!(
        reply["data"]["subscriber"],
        json!({"pendingBalance": "0.00000000", "inFlight": owed[0].to_string(), "paidTotal": "0.00000000"}),
        "{reply}"
    );
    let sent = eventually(20, || async {
        let p = store::payments::list(db, "VRSC", Some(PaymentStatus::Sent), None, None, 1)
            .await
            .unwrap();
        p.into_iter().next()
    })
    .await
    .expect("the payment is sent");
    assert!(sent.txid.is_some());
    mine(&sim, 10);
    let confirmed = eventually(20, || async {
        let p = store::payments::list(db, "VRSC", Some(PaymentStatus::Confirmed), None, None, 1)
            .await
            .unwrap();
        p.into_iter().next()
    })
    .await;
    assert!(confirmed.is_some(), "the payment confirms");
    for (who, owed) in [(&alice, owed[0]), (&bob, owed[1])] {
        let b = store::ledger::balance(db, "VRSC", who).await.unwrap();
        assert_eq!((b.pending, b.in_flight, b.paid), (Sats(0), Sats(0), owed));
        assert_eq!(paid_on_chain(&sim, who), (owed.0, 1), "paid once, on chain");
    }
    assert_eq!(
        store::ledger::check_snapshot(db, "VRSC").await.unwrap(),
        Ok(())
    );
    let reply = app.graphql(&format!("{{ subscriber(identity: \"{alice}\") {{ paidTotal pendingBalance payments {{ edges {{ node {{ status txid }} }} }} }} pool {{ totalPaid payoutsPaused }} }}")).await;
    assert_eq!(
        reply["data"]["subscriber"]["paidTotal"],
        owed[0].to_string(),
        "{reply}"
    );
    assert_eq!(
        reply["data"]["subscriber"]["payments"]["edges"][0]["node"]["status"],
        "CONFIRMED"
    );
    let events = store::events::list(
        db,
        &store::events::EventFilter {
            kinds: vec![coinstaker::domain::EventKind::PaymentSent],
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);

    // A ledger that does not add up pauses payouts, and says why.
    let bogus = store::ledger::Posting {
        chain: "VRSC",
        identity_address: Some(&bob),
        kind: store::ledger::LedgerKind::PaymentConfirmed,
        amount: Sats(1),
        stake_id: None,
        payment_id: None,
        height: None,
    };
    store::ledger::post(db, &bogus).await.unwrap();
    let reply = app
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id } }")
        .await;
    assert_eq!(reply["data"]["runPayouts"], json!([]), "{reply}");
    let reply = app.graphql("{ pool { payoutsPaused pausedReason } }").await;
    assert_eq!(reply["data"]["pool"]["payoutsPaused"], true, "{reply}");
    assert!(
        reply["data"]["pool"]["pausedReason"]
            .as_str()
            .unwrap_or_default()
            .contains("ledger check failed"),
        "{reply}"
    );

    // An admin pause is apart from the ledger check's hold, and says who paused and why.
    let reply = app.graphql_as(ADMIN_TOKEN, "mutation { pausePayouts(paused: true, reason: \"wallet maintenance\") { payoutsPaused pausedReason pausedByAdmin } }").await;
    let paused = &reply["data"]["pausePayouts"];
    assert_eq!(paused["payoutsPaused"], true, "{reply}");
    assert_eq!(paused["pausedByAdmin"], true, "{reply}");
    let reason = paused["pausedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("paused by an admin: wallet maintenance")
            && reason.contains("ledger check failed"),
        "both holds are named: {reply}"
    );

    // The books balance again (the bogus entry taken back): the next cycle lifts the check's
    // hold by itself; the admin's pause stays until an admin lifts it.
    store::ledger::post(
        db,
        &store::ledger::Posting {
            kind: store::ledger::LedgerKind::PaymentUnconfirmed,
            ..bogus
        },
    )
    .await
    .unwrap();
    let reply = app
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id } }")
        .await;
    assert_eq!(reply["data"]["runPayouts"], json!([]), "{reply}");
    let pool = "{ pool { payoutsPaused pausedReason pausedByAdmin ledgerCheckFailure } }";
    let reply = app.graphql(pool).await;
    assert_eq!(
        reply["data"]["pool"],
        json!({"payoutsPaused": true, "pausedReason": "paused by an admin: wallet maintenance", "pausedByAdmin": true, "ledgerCheckFailure": null}),
        "{reply}"
    );
    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { pausePayouts(paused: false) { payoutsPaused pausedReason } }",
        )
        .await;
    assert_eq!(
        reply["data"]["pausePayouts"],
        json!({"payoutsPaused": false, "pausedReason": null}),
        "{reply}"
    );
    app.stop().await;
    sim.stop().await;
}

async fn crash_case(fault: &str, restart_daemon: bool) {
    let sim = sim().await;
    let (alice, bob, tip) = earn(&sim);
    let db = TestDb::new(true).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "maturity = 100\nmin_payout = \"0.5\"\npayment_timeout_blocks = 25\npayout_interval_secs = 1\n";
    let (mut child, first_log) =
        crate::support::serve(dir.path(), &sim, &db.url, extra, Some(fault));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{fault}: the fault point was not reached; log:\n{}",
                first_log.try_iter().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        !status.success(),
        "{fault}: the fault killed the process ({status:?})"
    );
    if restart_daemon {
        sim.call("sim_restart", json!([])).unwrap();
    }
    let conn = db.connect().await;
    let (mut child, log) = crate::support::serve(dir.path(), &sim, &db.url, extra, None);
    // Blocks keep coming: confirmations, and the timeout of a payment that was never sent.
    let done = eventually(90, || async {
        mine(&sim, 1);
        let alice_paid = store::ledger::balance(&conn, "VRSC", &alice)
            .await
            .ok()?
            .paid;
        let bob_paid = store::ledger::balance(&conn, "VRSC", &bob).await.ok()?.paid;
        (alice_paid.0 > 0 && bob_paid.0 > 0).then_some(())
    })
    .await;
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        done.is_some(),
        "{fault}: everyone is paid in the end; log:\n{}",
        log.try_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(tip > 0);
    for who in [&alice, &bob] {
        let b = store::ledger::balance(&conn, "VRSC", who).await.unwrap();
        assert_eq!((b.pending, b.in_flight), (Sats(0), Sats(0)), "{fault}");
        assert_eq!(
            b.paid, b.credited,
            "{fault}: paid exactly what was credited"
        );
        assert_eq!(
            paid_on_chain(&sim, who),
            (b.paid.0, 1),
            "{fault}: one payment on chain"
        );
    }
    assert_eq!(
        store::ledger::check_snapshot(&conn, "VRSC").await.unwrap(),
        Ok(()),
        "{fault}"
    );
    sim.stop().await;
}

#[actix_web::test]
async fn killed_after_planning_a_payment() {
    crash_case("payout-after-planned:*", false).await;
}

#[actix_web::test]
async fn killed_after_sendcurrency_returned_before_the_opid_was_stored() {
    crash_case("payout-after-send:*", false).await;
}

#[actix_web::test]
async fn killed_after_the_opid_was_stored() {
    crash_case("payout-after-submitted:*", false).await;
}

#[actix_web::test]
async fn killed_after_the_opid_and_the_daemon_restarted() {
    crash_case("payout-after-submitted:*", true).await;
}

#[actix_web::test]
async fn set_min_payout_needs_the_identitys_signature() {
    let sim = sim().await;
    let (alice, bob, tip) = earn(&sim);
    let mut app = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let chain_id = sim.call("getinfo", json!([])).unwrap()["chainid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The amount is written with exactly 8 decimals in the message, whatever form the argument took.
    let message = format!("coinstaker:setMinPayout:{chain_id}:{alice}:100.00000000:{tip}");
    let signature = sim.call("signmessage", json!([alice, message])).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let mutation = |height: i64, signature: &str| {
        format!(
            "mutation {{ setMinPayout(identity: \"alice@\", amount: \"100\", height: {height}, signature: \"{signature}\") {{ minPayout }} }}"
        )
    };
    let reply = app.graphql(&mutation(tip, "not-a-signature")).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{reply}"
    );
    let reply = app.graphql(&mutation(tip - 11, &signature)).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "a stale height is refused: {reply}"
    );
    let reply = app.graphql(&mutation(tip, &signature)).await;
    assert_eq!(
        reply["data"]["setMinPayout"]["minPayout"], "100.00000000",
        "{reply}"
    );
    // The same signature again (a replay) is refused: each height is used once.
    let reply = app.graphql(&mutation(tip, &signature)).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "a replayed signature is refused: {reply}"
    );
    // A signature for another chain does not verify here.
    let other = format!(
        "coinstaker:setMinPayout:iOtherChainXXXXXXXXXXXXXXXXXXXXXXX:{alice}:1.00000000:{}",
        tip + 1
    );
    let foreign = sim.call("signmessage", json!([alice, other])).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app.graphql(&mutation(tip + 1, &foreign)).await;
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{reply}"
    );

    // Alice's balance is now below her own minimum: only Bob is paid.
    let reply = app
        .graphql_as(
            ADMIN_TOKEN,
            "mutation { runPayouts { outputs { identityAddress } } }",
        )
        .await;
    assert_eq!(
        reply["data"]["runPayouts"][0]["outputs"],
        json!([{"identityAddress": bob}]),
        "{reply}"
    );
    assert!(
        store::ledger::balance(&app.app_state.db, "VRSC", &alice)
            .await
            .unwrap()
            .pending
            .0
            > 0
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn a_two_thousand_block_run_balances_to_the_satoshi() {
    let _ = env_logger::builder()
        .is_test(true)
        .filter_level(log::LevelFilter::Info)
        .try_init();
    let sim = sim().await;
    let mut members = Vec::new();
    for i in 0..50 {
        let who = register(&sim, &format!("member{i}"), json!({}));
        sim.call("sim_fund", json!([who, format!("{}", 100 + 37 * i)]))
            .unwrap();
        if i % 3 == 0 {
            sim.call("sim_fund", json!([who, "5.5"])).unwrap();
        }
        members.push(who);
    }
    mine(&sim, 1);
    // Stakers outside the pool win most staked blocks.
    sim.call("sim_setexternalsupply", json!(["40000"])).unwrap();
    let edit = config_edit(&sim);
    let mut app = spawn_app_with(
        TestDb::new(true).await,
        move |c| {
            let mut c = edit(c);
            c.chains[0].payout_interval_secs = 1;
            c.chains[0].min_payout = Sats(10_000_000);
            c
        },
        &sim.rpc_url,
    )
    .await;
    for round in 0..20 {
        for _ in 0..100 {
            sim.with_node(|n| n.auto_block());
        }
        if round % 5 == 4 {
            sim.call("sim_reorg", json!([3])).unwrap();
        }
        let tip = sim
            .call("getblockcount", json!([]))
            .unwrap()
            .as_i64()
            .unwrap();
        app.wait_processed(tip).await;
        // Caught up: a payout cycle now (cycles wait while the pool is catching up, and the
        // rounds above are catch-ups of 100 blocks).
        let reply = app
            .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id } }")
            .await;
        assert!(reply["errors"].is_null(), "{reply}");
    }
    // Let the last payments confirm.
    let db = &app.app_state.db;
    let settled = eventually(60, || async {
        mine(&sim, 1);
        let open = crate::support::open_payments(db).await.unwrap();
        open.is_empty().then_some(())
    })
    .await;
    assert!(settled.is_some(), "every payment settles");
    let tip = sim
        .call("getblockcount", json!([]))
        .unwrap()
        .as_i64()
        .unwrap();
    app.wait_processed(tip).await;

    assert_eq!(
        store::ledger::check_snapshot(db, "VRSC").await.unwrap(),
        Ok(())
    );
    let matured = store::stakes::with_status(db, "VRSC", coinstaker::domain::StakeStatus::Matured)
        .await
        .unwrap();
    assert!(
        matured.len() >= 3,
        "several stakes matured ({})",
        matured.len()
    );
    let confirmed = store::payments::with_status(db, "VRSC", &[PaymentStatus::Confirmed])
        .await
        .unwrap();
    assert!(!confirmed.is_empty(), "payments were made");
    let mut paid_total = 0;
    let mut on_chain_total = 0;
    for who in &members {
        let b = store::ledger::balance(db, "VRSC", who).await.unwrap();
        paid_total += b.paid.0;
        on_chain_total += paid_on_chain(&sim, who).0;
    }
    assert_eq!(
        on_chain_total, paid_total,
        "the pool identity's outgoing payments equal Σ paid"
    );
    let totals = store::ledger::pool_totals(db, "VRSC").await.unwrap();
    let rewards: i64 = matured.iter().map(|s| s.reward.0).sum();
    assert_eq!(
        totals.credited_total.0 + totals.fees_earned.0,
        rewards,
        "every matured satoshi is credited or kept"
    );
    // The running staking supply (stepped block by block, through joins, leaves, spends and
    // reorgs) equals a full recount at every height.
    let tip = store::chain::tip(db, "VRSC").await.unwrap().unwrap().height;
    let heights: Vec<i64> = (1..=tip).collect();
    let recorded = store::stats::at_heights(db, "VRSC", &heights)
        .await
        .unwrap();
    assert_eq!(recorded.len() as i64, tip);
    for row in &recorded {
        let full = store::stats::supply_at(db, "VRSC", row.height)
            .await
            .unwrap();
        assert_eq!(
            (row.staking_supply, row.active_subscribers),
            full,
            "height {}",
            row.height
        );
    }
    assert!(recorded.iter().any(|r| r.active_subscribers > 10));

    // Every member's statement reconciles with its balances and the ledger, over the whole run
    // and split in two at the middle; the CSV says the same as the API.
    let middle = tip / 2;
    let mut statements_with_payments = 0;
    for who in &members {
        let b = store::ledger::balance(db, "VRSC", who).await.unwrap();
        let q = |range: &str| {
            format!(
                "{{ subscriber(identity: \"{who}\") {{ pendingBalance inFlight paidTotal statement{range} {{ openingPending closingPending credited paidOut returned lines {{ kind amount pendingAfter paymentStatus }} }} }} }}"
            )
        };
        let whole = app.graphql(&q("")).await;
        let st = &whole["data"]["subscriber"]["statement"];
        let amount = |v: &serde_json::Value| -> Sats { v.as_str().unwrap().parse().unwrap() };
        assert_eq!(amount(&st["openingPending"]), Sats(0), "{whole}");
        assert_eq!(
            amount(&st["closingPending"]),
            b.pending,
            "{who}: closing = pending"
        );
        assert_eq!(amount(&st["credited"]), b.credited, "{who}: Σ credits");
        assert_eq!(
            amount(&st["paidOut"]).0 - amount(&st["returned"]).0,
            b.in_flight.0 + b.paid.0,
            "{who}: Σ payments − returned = in flight + paid"
        );
        let lines = st["lines"].as_array().unwrap();
        let confirmed: i64 = lines
            .iter()
            .filter(|l| l["kind"] == "PAYMENT" && l["paymentStatus"] == "CONFIRMED")
            .map(|l| amount(&l["amount"]).0)
            .sum();
        assert_eq!(
            confirmed, b.paid.0,
            "{who}: Σ confirmed payments = paidTotal"
        );
        statements_with_payments += usize::from(confirmed > 0);
        let first = app.graphql(&q(&format!("(toHeight: {middle})"))).await;
        let second = app
            .graphql(&q(&format!("(fromHeight: {})", middle + 1)))
            .await;
        assert_eq!(
            first["data"]["subscriber"]["statement"]["closingPending"],
            second["data"]["subscriber"]["statement"]["openingPending"],
            "{who}: the halves meet"
        );
        assert_eq!(
            second["data"]["subscriber"]["statement"]["closingPending"],
            st["closingPending"]
        );
        let (status, csv) = app.get(&format!("/statements/{who}.csv")).await;
        assert_eq!(status, 200, "{csv}");
        let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
        assert!(
            rows[0].starts_with("kind,height,time_utc,amount,pending_after"),
            "{csv}"
        );
        assert_eq!(
            rows.len(),
            lines.len() + 3,
            "header, opening, lines, closing"
        );
        let closing: Vec<&str> = rows[rows.len() - 1].split(',').collect();
        assert_eq!(
            (closing[0], closing[4]),
            ("CLOSING", b.pending.to_string().as_str())
        );
    }
    assert!(
        statements_with_payments > 0,
        "statements with confirmed payments"
    );
    let (status, _) = app.get("/statements/nobody@.csv").await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(&format!("/statements/{}.csv?from=x", members[0]))
        .await;
    assert_eq!(status, 400);
    app.stop().await;
    sim.stop().await;
}

/// A new installation on the same pool identity (a lost database, or a move from another pool
/// back-end) seeds its subscribers' outputs and still knows which of them the pool paid, which
/// do not count against `max_utxos`: the pool identity's spends are in the daemon's address
/// index, not only in the database that made them.
#[actix_web::test]
async fn a_new_installation_knows_which_outputs_the_pool_paid() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let sim = sim().await;
    let (alice, _bob, tip) = earn(&sim);
    let mut first = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    first.wait_processed(tip).await;
    let reply = first
        .graphql_as(ADMIN_TOKEN, "mutation { runPayouts { id status } }")
        .await;
    assert_eq!(
        reply["data"]["runPayouts"][0]["status"], "SUBMITTED",
        "{reply}"
    );
    let db = &first.app_state.db;
    let txid = eventually(20, || async {
        let p = store::payments::list(db, "VRSC", Some(PaymentStatus::Sent), None, None, 1)
            .await
            .unwrap();
        p.into_iter().next().and_then(|p| p.txid)
    })
    .await
    .expect("the payment is sent");
    let tip = mine(&sim, 3);
    first.stop().await;

    let second = spawn_app_with(TestDb::new(true).await, config_edit(&sim), &sim.rpc_url).await;
    second.wait_processed(tip).await;
    let utxos = entity::subscriber_utxo::Entity::find()
        .filter(entity::subscriber_utxo::Column::IdentityAddress.eq(alice.as_str()))
        .filter(entity::subscriber_utxo::Column::SpentHeight.is_null())
        .all(&second.app_state.db)
        .await
        .unwrap();
    let paid: Vec<bool> = utxos
        .iter()
        .filter(|u| u.txid == txid)
        .map(|u| u.from_pool)
        .collect();
    assert_eq!(paid, [true], "the payment's output, seeded: {utxos:?}");
    let others: Vec<bool> = utxos
        .iter()
        .filter(|u| u.txid != txid)
        .map(|u| u.from_pool)
        .collect();
    assert!(
        !others.is_empty() && others.iter().all(|p| !p),
        "her other outputs were not paid by the pool: {utxos:?}"
    );
}
