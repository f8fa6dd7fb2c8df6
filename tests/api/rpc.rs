//! The JSON-RPC 1.0 client against a scripted daemon over a real socket.

use coinstaker::daemon::rpc::{RpcClient, RpcError};

use crate::support::closed_port_url;
use crate::support::fake_daemon::{FakeDaemon, PASSWORD, Reply, USER};

#[actix_web::test]
async fn reads_verusd_replies_and_errors() {
    let daemon = FakeDaemon::start(3_795_420).await;
    let client = RpcClient::with_password(&daemon.url, USER, PASSWORD).unwrap();
    // A 1.0 reply carries `"error": null` beside the result.
    assert_eq!(client.get_block_count().await, Ok(3_795_420));

    // Errors arrive with HTTP 500 and the error object in the body.
    daemon.set(
        "getblockcount",
        Reply::Error(500, -28, "Loading block index...".into()),
    );
    let err = client.get_block_count().await.unwrap_err();
    assert_eq!(err, RpcError::WarmingUp("Loading block index...".into()));
    assert!(err.is_retryable());

    daemon.set(
        "getblockcount",
        Reply::Error(500, -8, "Block height out of range".into()),
    );
    assert_eq!(
        client.get_block_count().await,
        Err(RpcError::Rpc {
            method: "getblockcount".into(),
            code: -8,
            message: "Block height out of range".into()
        })
    );

    daemon.set(
        "getidentity",
        Reply::Error(500, -5, "Identity not found".into()),
    );
    let err = client
        .call::<serde_json::Value>("getidentity", &["nobody@".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::NotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // Unknown methods come back as 404 with -32601.
    let err = client
        .call::<serde_json::Value>("nosuchmethod", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -32601, .. }), "{err:?}");

    // A result of the wrong type, and a body that is not JSON-RPC at all.
    daemon.set("getblockcount", Reply::Result("many".into()));
    assert!(matches!(
        client.get_block_count().await,
        Err(RpcError::Decode { .. })
    ));
    daemon.set(
        "getblockcount",
        Reply::Raw(200, "<html>proxy</html>".into()),
    );
    assert!(matches!(
        client.get_block_count().await,
        Err(RpcError::Decode { .. })
    ));
    daemon.set("getblockcount", Reply::Raw(502, "bad gateway".into()));
    let err = client.get_block_count().await.unwrap_err();
    assert_eq!(
        err,
        RpcError::Http {
            method: "getblockcount".into(),
            status: 502,
            body: "bad gateway".into()
        }
    );
    daemon.stop().await;
}

#[actix_web::test]
async fn wrong_password_and_no_daemon_are_told_apart() {
    let daemon = FakeDaemon::start(1).await;
    let client = RpcClient::with_password(&daemon.url, USER, "wrong").unwrap();
    let err = client.get_block_count().await.unwrap_err();
    assert_eq!(err, RpcError::Auth);
    assert!(
        err.to_string()
            .contains("check rpc_user/rpc_password or conf_file")
    );
    daemon.stop().await;

    let client = RpcClient::with_password(&closed_port_url(), USER, PASSWORD).unwrap();
    let err = client.get_block_count().await.unwrap_err();
    assert!(matches!(err, RpcError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[actix_web::test]
async fn credentials_from_conf_file_and_cookie() {
    let daemon = FakeDaemon::start(77).await;
    let dir = tempfile::tempdir().unwrap();
    let port = daemon.url.rsplit(':').next().unwrap();
    let conf = dir.path().join("VRSC.conf");
    std::fs::write(
        &conf,
        format!("rpcuser={USER}\nrpcpassword={PASSWORD}\nrpcport={port}\nserver=1\n"),
    )
    .unwrap();
    let mut config = crate::support::test_config("sqlite::memory:", &daemon.url);
    let chain = &mut config.chains[0];
    chain.rpc_url = None;
    chain.rpc_user = None;
    chain.rpc_password = None;
    chain.conf_file = Some(conf.clone());
    let client = RpcClient::from_config(chain).unwrap();
    assert_eq!(client.url(), daemon.url, "rpcport comes from the conf file");
    assert_eq!(client.get_block_count().await, Ok(77));

    // No password in the conf file: the daemon's .cookie beside it is used.
    std::fs::write(&conf, format!("rpcport={port}\n")).unwrap();
    std::fs::write(dir.path().join(".cookie"), format!("{USER}:{PASSWORD}")).unwrap();
    let client = RpcClient::from_config(chain).unwrap();
    assert_eq!(client.get_block_count().await, Ok(77));
    // A new cookie (daemon restarted) is read on the next call.
    std::fs::write(dir.path().join(".cookie"), format!("{USER}:stale")).unwrap();
    assert_eq!(client.get_block_count().await, Err(RpcError::Auth));

    chain.conf_file = None;
    let err = RpcClient::from_config(chain).unwrap_err();
    assert!(matches!(err, RpcError::Credentials(_)), "{err:?}");
    daemon.stop().await;
}
