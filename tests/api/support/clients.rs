//! Real clients for the tests, installed into `target/test-venv` on first use: Python's `gql`
//! library (GraphQL over WebSocket, both protocols) and `selenium` (drives Debian's headless
//! Chromium for the dashboard test). A missing Python or a failed install fails the test with
//! the reason; it never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The pinned client libraries: Python `gql` with its `websockets` transport, and selenium.
const PACKAGES: &[&str] = &["gql[websockets]==4.4.0", "selenium==4.27.1"];

static SETUP: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the test virtualenv, created (with the client libraries) if needed.
pub fn python() -> PathBuf {
    let _once = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("test-venv");
    let python = venv.join("bin").join("python");
    let ready = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", "import gql, websockets, selenium"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return python;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 is needed by the WebSocket client tests: install Python 3 with venv");
    assert!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(PACKAGES)
        .status()
        .expect("run pip");
    assert!(
        status.success(),
        "pip install {PACKAGES:?} failed: the client tests need them (network access to PyPI)"
    );
    assert!(
        ready(&python),
        "{PACKAGES:?} installed but cannot be imported"
    );
    python
}

/// A running `tests/clients/subscribe.py`; its output lines are collected as they arrive.
pub struct GqlClient {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl GqlClient {
    /// Connects to `ws_url` with `protocol` and runs `subscriptions` (see the script).
    pub fn start(ws_url: &str, protocol: &str, subscriptions: &Value, init: &Value) -> GqlClient {
        let mut child = Command::new(python())
            .arg(workspace().join("tests/clients/subscribe.py"))
            .arg(ws_url)
            .arg(protocol)
            .arg(subscriptions.to_string())
            .arg(init.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the gql client");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push(value);
            }
        });
        GqlClient { child, lines }
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The results of subscription `label` so far (the `data` of each line).
    pub fn results(&self, label: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["label"] == label && l.get("data").is_some())
            .map(|l| l["data"].clone())
            .collect()
    }

    /// Waits (at most `secs`) until `check` holds for the lines; panics with them otherwise.
    pub async fn wait_until(&self, secs: u64, what: &str, check: impl Fn(&[Value]) -> bool) {
        let ok = super::eventually(secs, || async { check(&self.lines()).then_some(()) }).await;
        assert!(
            ok.is_some(),
            "{what}; the client printed {:#?}",
            self.lines()
        );
    }

    /// Disconnects (kills the client).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GqlClient {
    fn drop(&mut self) {
        self.kill();
    }
}
