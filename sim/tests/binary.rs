//! `verusd-sim` runs alone: answers JSON-RPC in verusd's shape and publishes ZMQ hashblock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn runs_alone_with_rpc_and_zmq() {
    let (rpc_port, zmq_port) = (free_port(), free_port());
    let _child = Kill(
        Command::new(env!("CARGO_BIN_EXE_verusd-sim"))
            .args(["--rpc-bind", &format!("127.0.0.1:{rpc_port}")])
            .args(["--zmq-bind", &format!("tcp://127.0.0.1:{zmq_port}")])
            .args([
                "--rpc-user",
                "user",
                "--rpc-password",
                "pass",
                "--block-interval",
                "0.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // What `curl --user user:pass -d '{"method":"getblockcount","params":[],"id":1}'` sends.
    let request = r#"{"method":"getblockcount","params":[],"id":1}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let attempt = std::net::TcpStream::connect(("127.0.0.1", rpc_port)).ok().and_then(|mut s| {
            use std::io::{Read, Write};
            write!(
                s,
                "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{request}",
                request.len()
            )
            .ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out)
        });
        if let Some(r) = attempt {
            break r;
        }
        assert!(Instant::now() < deadline, "verusd-sim did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec!["error", "id", "result"],
        "verusd's JSON-RPC 1.0 envelope, no jsonrpc member"
    );
    assert!(json["error"].is_null() && json["id"] == 1 && json["result"].is_u64());

    let context = zmq::Context::new();
    let sub = context.socket(zmq::SUB).unwrap();
    sub.set_subscribe(b"hashblock").unwrap();
    sub.set_rcvtimeo(10_000).unwrap();
    sub.connect(&format!("tcp://127.0.0.1:{zmq_port}")).unwrap();
    let frames = sub.recv_multipart(0).expect("a hashblock notification");
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0], b"hashblock");
    assert_eq!(frames[1].len(), 32);
    assert_eq!(frames[2].len(), 4);
}
