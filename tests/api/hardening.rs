//! The GraphQL surface under bad input: each bad request gets its code and changes nothing;
//! the limits hold before anything runs; every type, field and argument is described; CORS
//! and the mutation rate limit do what the configuration says.

use serde_json::{Value, json};

use crate::support::{
    ADMIN_TOKEN, TestApp, TestDb, business_rows, mine, pool_for, register, sim, spawn_app_with,
};

/// graphql-js's `getIntrospectionQuery()` (descriptions on), as GraphiQL sends it.
pub const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

async fn post_raw(app: &TestApp, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST /graphql");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

fn code(reply: &Value) -> &str {
    reply["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

/// Everything a bad request could have changed.
async fn snapshot(app: &TestApp) -> (Vec<String>, Value, usize) {
    let db = &app.app_state.db;
    let api = app
        .graphql("{ pool { feePercent minPayout payoutsPaused conditions { minUnlockDelay requireSeparateRevokeRecover maxPrimaryAddresses maxUtxos utxoCountMin } } subscribers { edges { node { identityAddress status minPayout feePercent } } } }")
        .await;
    let audit = coinstaker::store::audit::recent(db, 100)
        .await
        .unwrap()
        .len();
    (business_rows(db).await, api, audit)
}

#[actix_web::test]
async fn a_battery_of_bad_requests_gets_the_right_codes_and_changes_nothing() {
    let sim = sim().await;
    let alice = register(&sim, "alice", json!({}));
    sim.call("sim_fund", json!([alice, "100"])).unwrap();
    let tip = mine(&sim, 3);
    let mut app = spawn_app_with(TestDb::new(true).await, pool_for(&sim, 1), &sim.rpc_url).await;
    app.wait_processed(tip).await;
    let before = snapshot(&app).await;
    assert_eq!(
        before.1["data"]["subscribers"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{}",
        before.1
    );

    // Malformed JSON.
    let (status, reply) = post_raw(&app, b"{\"query\": \"{ pools { chain } ".to_vec(), None).await;
    assert_eq!((status, code(&reply)), (400, "INVALID_INPUT"), "{reply}");

    // A 2 MB body.
    let big = json!({"query": "{ pools { chain } }", "variables": {"pad": "x".repeat(2 << 20)}});
    let (status, reply) = post_raw(&app, big.to_string().into_bytes(), None).await;
    assert_eq!((status, code(&reply)), (413, "INVALID_INPUT"), "{reply}");

    // A 50-level deep query.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(46),
        "} ".repeat(46)
    );
    let reply = app.graphql(&deep).await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert_eq!(reply["data"], Value::Null, "nothing ran");

    // Pages over 500, as a literal and as a variable.
    let reply = app
        .graphql("{ subscribers(first: 100000) { edges { cursor } } }")
        .await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert_eq!(reply["data"], Value::Null, "nothing ran");
    let body = json!({"query": "query($n: Int!) { events(first: $n) { edges { cursor } } }", "variables": {"n": 501}});
    let (_, reply) = post_raw(&app, body.to_string().into_bytes(), None).await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");

    // Costlier than the configured complexity.
    let costly: String = (0..50)
        .map(|i| {
            format!("a{i}: subscribers(first: 500) {{ edges {{ cursor node {{ status }} }} }} ")
        })
        .collect();
    let reply = app.graphql(&format!("{{ {costly} }}")).await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    assert_eq!(reply["data"], Value::Null, "nothing ran");

    // Bad Amounts, as literals and as variables, from an admin.
    for bad in ["-1", "1e5", "0.123456789", "abc", ""] {
        let reply = app
            .graphql_as(
                ADMIN_TOKEN,
                &format!("mutation {{ updatePoolConditions(input: {{utxoCountMin: {bad:?}}}) {{ utxoCountMin }} }}"),
            )
            .await;
        assert_eq!(code(&reply), "INVALID_INPUT", "{bad:?}: {reply}");
        let body = json!({
            "query": "mutation($a: Amount!) { updatePoolConditions(input: {utxoCountMin: $a}) { utxoCountMin } }",
            "variables": {"a": bad}
        });
        let (_, reply) = post_raw(&app, body.to_string().into_bytes(), Some(ADMIN_TOKEN)).await;
        assert_eq!(
            code(&reply),
            "INVALID_INPUT",
            "{bad:?} as a variable: {reply}"
        );
    }
    let reply = app
        .graphql("{ subscriber(identity: \"alice@\") { minPayout } }")
        .await;
    assert!(reply["errors"].is_null(), "{reply}");

    // Injection-looking identities.
    for identity in [
        r#"alice\" OR 1=1 --@"#,
        "'; DROP TABLE subscriber; --",
        "alice@; DELETE FROM event",
        "i' OR '1'='1",
    ] {
        let reply = app
            .graphql(&format!(
                "mutation {{ subscribe(identity: \"{identity}\") {{ eligible }} }}"
            ))
            .await;
        assert_eq!(code(&reply), "INVALID_INPUT", "{identity}: {reply}");
        let body = json!({"query": "query($i: String!) { subscriber(identity: $i) { status } }", "variables": {"i": identity}});
        let (_, reply) = post_raw(&app, body.to_string().into_bytes(), None).await;
        assert_eq!(code(&reply), "INVALID_INPUT", "{identity}: {reply}");
    }

    // Admin mutations without a token and with a wrong one.
    let pause = "mutation { pausePayouts(paused: true, reason: \"x\") { payoutsPaused } }";
    let reply = app.graphql(pause).await;
    assert_eq!(code(&reply), "UNAUTHENTICATED", "{reply}");
    let reply = app.graphql_as("not-the-token", pause).await;
    assert_eq!(code(&reply), "FORBIDDEN", "{reply}");
    let reply = app
        .graphql_as(
            "",
            "mutation { setPoolFee(feePercent: \"1\") { feePercent } }",
        )
        .await;
    assert_eq!(code(&reply), "UNAUTHENTICATED", "{reply}");

    // Unknown fields and syntax errors.
    let reply = app.graphql("{ pools { noSuchField } }").await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");
    let reply = app.graphql("{ pools { chain ").await;
    assert_eq!(code(&reply), "INVALID_INPUT", "{reply}");

    // Nothing changed, and the server still answers.
    assert_eq!(snapshot(&app).await, before);
    let reply = app.graphql("{ pools { chain } }").await;
    assert_eq!(reply["data"]["pools"][0]["chain"], "VRSC", "{reply}");
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn the_standard_introspection_query_works_and_everything_is_described() {
    let sim = sim().await;
    let mut app = spawn_app_with(TestDb::new(false).await, pool_for(&sim, 1), &sim.rpc_url).await;
    let reply = app.graphql(INTROSPECTION).await;
    assert!(reply["errors"].is_null(), "{reply}");
    let types = reply["data"]["__schema"]["types"].as_array().unwrap();
    let builtin = ["String", "Int", "Float", "Boolean", "ID"];
    let mut missing = Vec::new();
    let described = |v: &Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    };
    for t in types {
        let name = t["name"].as_str().unwrap();
        if name.starts_with("__") || builtin.contains(&name) {
            continue;
        }
        if !described(t) {
            missing.push(name.to_owned());
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            if !described(f) {
                missing.push(format!("{name}.{}", f["name"]));
            }
            for a in f["args"].as_array().into_iter().flatten() {
                if !described(a) {
                    missing.push(format!("{name}.{}({})", f["name"], a["name"]));
                }
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            if !described(f) {
                missing.push(format!("{name}.{}", f["name"]));
            }
        }
        for v in t["enumValues"].as_array().into_iter().flatten() {
            if !described(v) {
                missing.push(format!("{name}.{}", v["name"]));
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:#?}");
    app.stop().await;
    sim.stop().await;
}

#[actix_web::test]
async fn cors_and_the_mutation_rate_limit_follow_the_configuration() {
    let sim = sim().await;
    let edit = pool_for(&sim, 1);
    let mut app = spawn_app_with(
        TestDb::new(false).await,
        move |c| {
            let mut c = edit(c);
            c.http.cors_allowed_origins = vec!["https://dash.example".into()];
            c.http.mutation_rate_per_minute = 2;
            c
        },
        &sim.rpc_url,
    )
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let ok = preflight("https://dash.example").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dash.example")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let pause = "mutation { pausePayouts(paused: false) { payoutsPaused } }";
    for _ in 0..2 {
        let reply = app.graphql_as(ADMIN_TOKEN, pause).await;
        assert!(reply["errors"].is_null(), "{reply}");
    }
    let reply = app.graphql_as(ADMIN_TOKEN, pause).await;
    assert_eq!(code(&reply), "RATE_LIMITED", "{reply}");
    let reply = app.graphql("{ pools { chain } }").await;
    assert!(
        reply["errors"].is_null(),
        "queries are not limited: {reply}"
    );
    let audit = coinstaker::store::audit::recent(&app.app_state.db, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 2, "the refused mutation did not run");
    app.stop().await;
    sim.stop().await;
}
