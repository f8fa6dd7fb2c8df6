//! The dashboard at `/`, end to end in a real browser: `coinstaker demo` serves it, and
//! `tests/clients/dashboard_e2e.py` drives Debian's headless Chromium through chromedriver
//! (selenium): the pool's R-address, a processed height that increases, a live `STAKE_FOUND`
//! in the feed, the feed resuming after a reconnect, the lookup of a subscriber and of a refused
//! identity, 375 px and 1440 px wide, and no console errors. Screenshots go to
//! `target/dashboard-screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::KillOnDrop;
use crate::support::clients::python;

#[actix_web::test]
async fn the_embedded_assets_are_served_without_anything_from_elsewhere() {
    let sim = crate::support::sim().await;
    let mut app = crate::support::spawn_app(&sim.rpc_url).await;
    let (status, page) = app.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("/dashboard/app.js") && page.contains("/dashboard/style.css"));
    for path in ["/dashboard/app.js", "/dashboard/style.css"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    // Nothing is loaded from another origin: no absolute URLs in the page or its assets
    // (the WebSocket URL is built from the page's own location).
    for path in ["/", "/dashboard/app.js", "/dashboard/style.css"] {
        let (_, body) = app.get(path).await;
        for scheme in ["http://", "https://"] {
            for (at, _) in body.match_indices(scheme) {
                // SVG's namespace is a name, not something loaded.
                assert!(
                    body[at..].starts_with("http://www.w3.org/"),
                    "{path} refers to {}…: the page must work offline",
                    &body[at..(at + 40).min(body.len())]
                );
            }
        }
    }
    let resp = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    app.stop().await;
    sim.stop().await;
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[test]
fn the_dashboard_works_in_headless_chromium_against_the_demo() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install chromium chromium-driver (.ci/run installs them)"
        );
    }
    let python = python();
    let shots = target_dir().join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // The demo's log, shown when the browser test fails.
    let log_path = shots.join("demo.log");
    let log = std::fs::File::create(&log_path).expect("create demo.log");
    let mut demo = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_coinstaker"))
            .args(["demo", "--block-interval", "1"])
            .env("COINSTAKER_HTTP__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start coinstaker demo"),
    );
    // The banner names the dashboard's URL.
    let stdout = demo.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo prints its dashboard URL");
        if let Some(rest) = line.trim().strip_prefix("dashboard") {
            break rest.trim().trim_end_matches('/').to_owned();
        }
    };
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/dashboard_e2e.py"))
        .arg(&url)
        .arg(&shots)
        .output()
        .expect("run dashboard_e2e.py");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the browser test failed:\n{report}\nthe demo's log ({}), last lines:\n{}",
            log_path.display(),
            tail.join("\n")
        );
    }
    for shot in ["dashboard-1440.png", "dashboard-375.png"] {
        let len = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{shot} saved ({len} bytes)");
    }
    eprintln!("{report}");
}
