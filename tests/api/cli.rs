//! The `coinstaker` binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_coinstaker");

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("pool.toml");
    let db = dir.join("pool.db");
    let text = format!(
        r#"[database]
url = "sqlite://{}?mode=rwc"

[http]
bind = "127.0.0.1:0"

[[chain]]
name = "VRSC"
rpc_url = "{}"
rpc_user = "u"
rpc_password = "p"
pool_identity = "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e"
pool_primary_address = "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK"
{extra}
"#,
        db.display(),
        crate::support::closed_port_url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_without_a_config_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.example.toml") && stderr.contains("coinstaker demo"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_is_refused_without_touching_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "fee_percent = \"120\"");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fee_percent") && stderr.contains("0 to 100"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("pool.db").exists(),
        "no database was created"
    );

    let config = write_config(dir.path(), "[chain.conditions]\nmax_primary_adresses = 3");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_primary_adresses"), "{stderr}");
    assert!(!dir.path().join("pool.db").exists());
}

#[test]
fn export_schema_prints_exactly_schema_graphql() {
    let out = Command::new(BIN).arg("export-schema").output().unwrap();
    assert!(out.status.success());
    let stored =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), stored);
}

#[test]
fn admin_token_prints_a_token_and_its_hash() {
    let out = Command::new(BIN).arg("admin-token").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    let token = field("token:");
    let hash = field("sha256:");
    assert_eq!(token.len(), 64);
    assert_eq!(
        coinstaker::config::TokenHash::of_token(&token).to_string(),
        hash
    );
    let again = Command::new(BIN).arg("admin-token").output().unwrap();
    assert_ne!(again.stdout, out.stdout, "every token is new");
}

#[test]
fn migrate_applies_to_the_database_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let other = dir.path().join("other.db");
    let out = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&config)
        .env(
            "COINSTAKER_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", other.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.exists(), "the override's database was migrated");
    assert!(
        !dir.path().join("pool.db").exists(),
        "the file's database was not"
    );
}

#[tokio::test]
async fn serve_answers_then_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let address = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the server logs its address");
        log.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let reply: serde_json::Value = coinstaker::net::client_builder()
        .build()
        .unwrap()
        .post(format!("{address}/graphql"))
        .json(&serde_json::json!({"query": "{ pools { chain primaryAddress feePercent } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["data"]["pools"][0]["feePercent"], "5");

    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    log.extend(rx.iter());
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("stopped")),
        "{}",
        log.join("\n")
    );
    assert!(
        !log.iter().any(|l| l.contains("\"p\"")),
        "no secret in the log"
    );
}

#[tokio::test]
async fn demo_runs_a_chain_that_advances_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--block-interval", "0.2"])
        .current_dir(dir.path())
        .env("COINSTAKER_HTTP__BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let graphql = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the demo prints its URLs");
        if let Some(url) = line.trim().strip_prefix("GraphQL") {
            break url.trim().to_owned();
        }
    };
    let tip = || async {
        let reply: serde_json::Value = coinstaker::net::client_builder()
            .build()
            .unwrap()
            .post(&graphql)
            .json(&serde_json::json!({"query": "{ pool { chain tipHeight primaryAddress } }"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["data"]["pool"]["chain"], "VRSCTEST");
        reply["data"]["pool"]["tipHeight"].as_i64().unwrap()
    };
    let first =
        crate::support::eventually(20, || async { Some(tip().await).filter(|t| *t >= 200) })
            .await
            .expect("pre-mined history");
    let later =
        crate::support::eventually(20, || async { Some(tip().await).filter(|t| *t > first) }).await;
    assert!(later.is_some(), "the chain advances past {first}");

    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success(), "the demo stops cleanly");
}
