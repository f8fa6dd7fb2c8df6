//! A typed JSON-RPC 1.0 client for verusd over `reqwest`.
//!
//! verusd speaks Bitcoin-style JSON-RPC 1.0: positional `params`, replies with both `result`
//! and `error` and no `jsonrpc` member, and errors sent with HTTP 500/404/400 whose body still
//! carries the error object. Strict 2.0 clients reject such replies, hence this client.
//! Credentials come from the config, from verusd's conf file, or from its `.cookie` file
//! (re-read on every call, since the daemon writes a new one at each start).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::types::*;
use crate::config::{ChainConfig, Secret};
use crate::domain::Sats;

/// verusd's RPC error code while it loads ("Loading block index...").
pub const RPC_IN_WARMUP: i64 = -28;
/// verusd's error code for an unknown identity, block or address.
pub const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
/// VRSC mainnet's RPC port.
pub const DEFAULT_RPC_PORT: u16 = 27486;

/// Why a call failed. [`RpcError::is_retryable`] says whether waiting may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// No usable credentials were configured or found.
    #[error("RPC credentials: {0}")]
    Credentials(String),
    /// HTTP 401.
    #[error("RPC authentication failed: check rpc_user/rpc_password or conf_file")]
    Auth,
    /// HTTP 403: the daemon refuses this client's address.
    #[error("RPC access forbidden: add this host to verusd's rpcallowip")]
    Forbidden,
    /// Connection refused, reset or timed out: the daemon is down or unreachable.
    #[error("daemon unreachable at {url}: {detail}")]
    Unreachable {
        /// Where we tried.
        url: String,
        /// What the network said.
        detail: String,
    },
    /// The daemon is starting (−28).
    #[error("daemon warming up: {0}")]
    WarmingUp(String),
    /// −5: the identity, block or address does not exist.
    #[error("{method}: not found: {message}")]
    NotFound {
        /// The RPC method.
        method: String,
        /// verusd's message.
        message: String,
    },
    /// Any other error reply.
    #[error("{method}: RPC error {code}: {message}")]
    Rpc {
        /// The RPC method.
        method: String,
        /// verusd's code.
        code: i64,
        /// verusd's message.
        message: String,
    },
    /// A non-2xx reply without a JSON-RPC error object.
    #[error("{method}: HTTP {status}: {body}")]
    Http {
        /// The RPC method.
        method: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A reply that does not parse as what the method returns.
    #[error("{method}: reply does not parse: {detail}")]
    Decode {
        /// The RPC method.
        method: String,
        /// What was wrong.
        detail: String,
    },
}

impl RpcError {
    /// Whether retrying later may succeed without anyone changing anything: the daemon is
    /// down, starting, or answered something unexpected once. Credentials and
    /// "not found" need a person or a different request.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. }
                | RpcError::WarmingUp(_)
                | RpcError::Http { .. }
                | RpcError::Decode { .. }
        )
    }
}

#[derive(Debug, Clone)]
enum Auth {
    Basic { user: String, password: Secret },
    Cookie(PathBuf),
}

/// A client for one chain's daemon.
#[derive(Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

/// `rpcuser`, `rpcpassword` and `rpcport` from a verusd conf file (`key=value` lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DaemonConf {
    /// `rpcuser`.
    pub user: Option<String>,
    /// `rpcpassword`.
    pub password: Option<String>,
    /// `rpcport`.
    pub port: Option<u16>,
}

impl DaemonConf {
    /// Parses the text of a conf file; later lines win, comments and unknown keys are skipped.
    pub fn parse(text: &str) -> DaemonConf {
        let mut conf = DaemonConf::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "rpcuser" => conf.user = Some(value),
                "rpcpassword" => conf.password = Some(value),
                "rpcport" => conf.port = value.parse().ok(),
                _ => {}
            }
        }
        conf
    }
}

/// Expands a leading `~/` to `$HOME`.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

impl RpcClient {
    /// Builds the client for a configured chain, reading `conf_file` if one is named.
    pub fn from_config(chain: &ChainConfig) -> Result<RpcClient, RpcError> {
        let conf = match &chain.conf_file {
            Some(path) => {
                let path = expand_home(path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    RpcError::Credentials(format!("cannot read conf_file {}: {e}", path.display()))
                })?;
                Some((path, DaemonConf::parse(&text)))
            }
            None => None,
        };
        let url = match &chain.rpc_url {
            Some(url) => url.clone(),
            None => {
                let port = conf
                    .as_ref()
                    .and_then(|(_, c)| c.port)
                    .unwrap_or(DEFAULT_RPC_PORT);
                format!("http://127.0.0.1:{port}")
            }
        };
        let auth = match (&chain.rpc_user, &chain.rpc_password, &conf) {
            (Some(user), Some(password), _) => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            (
                _,
                _,
                Some((
                    _,
                    DaemonConf {
                        user: Some(user),
                        password: Some(password),
                        ..
                    },
                )),
            ) if !password.is_empty() => Auth::Basic {
                user: user.clone(),
                password: Secret::new(password.clone()),
            },
            _ => match (&chain.cookie_file, &conf) {
                (Some(cookie), _) => Auth::Cookie(expand_home(cookie)),
                (None, Some((conf_path, _))) => Auth::Cookie(
                    conf_path
                        .parent()
                        .map(|d| d.join(".cookie"))
                        .unwrap_or_else(|| PathBuf::from(".cookie")),
                ),
                (None, None) => {
                    return Err(RpcError::Credentials(format!(
                        "chain {}: set rpc_user and rpc_password, conf_file (verusd's VRSC.conf), or cookie_file",
                        chain.name
                    )));
                }
            },
        };
        RpcClient::new(url, auth)
    }

    /// A client with user and password.
    pub fn with_password(url: &str, user: &str, password: &str) -> Result<RpcClient, RpcError> {
        RpcClient::new(
            url.to_owned(),
            Auth::Basic {
                user: user.to_owned(),
                password: Secret::new(password),
            },
        )
    }

    fn new(url: String, auth: Auth) -> Result<RpcClient, RpcError> {
        let http = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RpcError::Credentials(format!("cannot build the HTTP client: {e}")))?;
        Ok(RpcClient {
            http,
            url,
            auth,
            next_id: AtomicU64::new(1),
        })
    }

    /// The daemon's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn credentials(&self) -> Result<(String, String), RpcError> {
        match &self.auth {
            Auth::Basic { user, password } => Ok((user.clone(), password.expose().to_owned())),
            Auth::Cookie(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    RpcError::Credentials(format!(
                        "cannot read the cookie file {} ({e}); is verusd running, or set rpc_user/rpc_password",
                        path.display()
                    ))
                })?;
                let (user, password) = text.trim().split_once(':').ok_or_else(|| {
                    RpcError::Credentials(format!(
                        "the cookie file {} is not user:password",
                        path.display()
                    ))
                })?;
                Ok((user.to_owned(), password.to_owned()))
            }
        }
    }

    /// Calls `method` with positional `params` (anything that serialises to a JSON array)
    /// and decodes the result as `T`.
    pub async fn call<T: DeserializeOwned, P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<T, RpcError> {
        let raw = self.call_raw(method, params).await?;
        decode(method, &raw)
    }

    /// Calls `method` and returns the exact text of the result (so amounts can be read as
    /// decimals, never through `f64`).
    pub async fn call_raw<P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<Box<RawValue>, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&Request {
            jsonrpc: "1.0",
            id,
            method,
            params,
        })
        .map_err(|e| RpcError::Decode {
            method: method.to_owned(),
            detail: format!("cannot encode params: {e}"),
        })?;
        let (status, bytes) = self.post(body).await?;
        let envelope: Result<Envelope, _> = serde_json::from_slice(&bytes);
        match envelope {
            Ok(Envelope {
                error: Some(err), ..
            }) => Err(rpc_error(method, err)),
            // A JSON `null` result arrives as `None`; the default raw value is `null`.
            Ok(Envelope {
                result,
                error: None,
            }) if status.is_success() => Ok(result.unwrap_or_default()),
            Ok(_) | Err(_) if !status.is_success() => Err(RpcError::Http {
                method: method.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
            Ok(_) => Err(RpcError::Decode {
                method: method.to_owned(),
                detail: "reply has neither result nor error".into(),
            }),
            Err(e) => Err(RpcError::Decode {
                method: method.to_owned(),
                detail: format!("not a JSON-RPC reply: {e}"),
            }),
        }
    }

    /// Calls `method` once per element of `params` in one HTTP request (a JSON-RPC batch).
    /// The outer error is the transport's; each call has its own result, in input order.
    pub async fn call_batch<T: DeserializeOwned, P: Serialize>(
        &self,
        method: &str,
        params: &[P],
    ) -> Result<Vec<Result<T, RpcError>>, RpcError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let first = self
            .next_id
            .fetch_add(params.len() as u64, Ordering::Relaxed);
        let requests: Vec<Request<'_, &P>> = params
            .iter()
            .enumerate()
            .map(|(i, p)| Request {
                jsonrpc: "1.0",
                id: first + i as u64,
                method,
                params: p,
            })
            .collect();
        let body = serde_json::to_vec(&requests).map_err(|e| RpcError::Decode {
            method: method.to_owned(),
            detail: format!("cannot encode params: {e}"),
        })?;
        let (status, bytes) = self.post(body).await?;
        let replies: Vec<BatchEntry> = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(_) if !status.is_success() => {
                // The whole batch was refused; the body may be a single error envelope.
                return match serde_json::from_slice::<Envelope>(&bytes) {
                    Ok(Envelope {
                        error: Some(err), ..
                    }) => Err(rpc_error(method, err)),
                    _ => Err(RpcError::Http {
                        method: method.to_owned(),
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    }),
                };
            }
            Err(e) => {
                return Err(RpcError::Decode {
                    method: method.to_owned(),
                    detail: format!("not a JSON-RPC batch reply: {e}"),
                });
            }
        };
        let mut out: Vec<Option<Result<T, RpcError>>> = (0..params.len()).map(|_| None).collect();
        for reply in replies {
            let Some(slot) = reply
                .id
                .checked_sub(first)
                .and_then(|i| out.get_mut(i as usize))
            else {
                continue;
            };
            *slot = Some(match (reply.error, reply.result) {
                (Some(err), _) => Err(rpc_error(method, err)),
                (None, result) => decode(method, &result.unwrap_or_default()),
            });
        }
        Ok(out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(RpcError::Decode {
                        method: method.to_owned(),
                        detail: "no reply for this call in the batch".into(),
                    })
                })
            })
            .collect())
    }

    /// POSTs a body with Basic auth; maps transport failures, 401 and 403.
    async fn post(&self, body: Vec<u8>) -> Result<(reqwest::StatusCode, bytes::Bytes), RpcError> {
        let (user, password) = self.credentials()?;
        let response = self
            .http
            .post(&self.url)
            .basic_auth(user, Some(password))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RpcError::Unreachable {
                url: self.url.clone(),
                detail: describe(&e),
            })?;
        let status = response.status();
        match status.as_u16() {
            401 => return Err(RpcError::Auth),
            403 => return Err(RpcError::Forbidden),
            _ => {}
        }
        let bytes = response.bytes().await.map_err(|e| RpcError::Unreachable {
            url: self.url.clone(),
            detail: describe(&e),
        })?;
        Ok((status, bytes))
    }

    /// `getblockcount`: the height of the daemon's chain tip.
    pub async fn get_block_count(&self) -> Result<u64, RpcError> {
        self.call("getblockcount", ()).await
    }

    /// `getblockhash <height>`: the main-chain block at a height.
    pub async fn get_block_hash(&self, height: i64) -> Result<String, RpcError> {
        self.call("getblockhash", (height,)).await
    }

    /// `getbestblockhash`.
    pub async fn get_best_block_hash(&self) -> Result<String, RpcError> {
        self.call("getbestblockhash", ()).await
    }

    /// `getblock <hash|height> 1`: transactions as ids. The first parameter is a string even
    /// for a height (verusd reads it with `get_str()`).
    pub async fn get_block(&self, hash_or_height: &str) -> Result<Block<String>, RpcError> {
        self.call("getblock", (hash_or_height, 1)).await
    }

    /// `getblock <hash|height> 2`: full transactions.
    pub async fn get_block_verbose(&self, hash_or_height: &str) -> Result<Block<Tx>, RpcError> {
        self.call("getblock", (hash_or_height, 2)).await
    }

    /// `getinfo`.
    pub async fn get_info(&self) -> Result<Info, RpcError> {
        self.call("getinfo", ()).await
    }

    /// `getblockchaininfo`.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", ()).await
    }

    /// `getmininginfo`.
    pub async fn get_mining_info(&self) -> Result<MiningInfo, RpcError> {
        self.call("getmininginfo", ()).await
    }

    /// `getwalletinfo`.
    pub async fn get_wallet_info(&self) -> Result<WalletInfo, RpcError> {
        self.call("getwalletinfo", ()).await
    }

    /// `getidentity <name|i-address> [height]`: the identity as of a height (default: tip).
    pub async fn get_identity(
        &self,
        identity: &str,
        height: Option<i64>,
    ) -> Result<IdentityReply, RpcError> {
        match height {
            Some(h) => self.call("getidentity", (identity, h)).await,
            None => self.call("getidentity", (identity,)).await,
        }
    }

    /// Many `getidentity` calls in one batch, each `(identity, height)`.
    pub async fn get_identities(
        &self,
        requests: &[(String, Option<i64>)],
    ) -> Result<Vec<Result<IdentityReply, RpcError>>, RpcError> {
        let params: Vec<serde_json::Value> = requests
            .iter()
            .map(|(id, h)| match h {
                Some(h) => serde_json::json!([id, h]),
                None => serde_json::json!([id]),
            })
            .collect();
        self.call_batch("getidentity", &params).await
    }

    /// `getidentitieswithaddress`: identities listing an R-address (needs verusd `-idindex=1`).
    pub async fn get_identities_with_address(
        &self,
        address: &str,
        from_height: i64,
        to_height: i64,
        unspent: bool,
    ) -> Result<Vec<IdentityWithTxout>, RpcError> {
        let query = serde_json::json!({"address": address, "fromheight": from_height, "toheight": to_height, "unspent": unspent});
        self.call("getidentitieswithaddress", (query,)).await
    }

    /// `getaddressutxos` with `chaininfo`: the outputs and the tip they are as of.
    pub async fn get_address_utxos(
        &self,
        addresses: &[String],
    ) -> Result<AddressUtxosAt, RpcError> {
        self.call(
            "getaddressutxos",
            (serde_json::json!({"addresses": addresses, "chaininfo": true}),),
        )
        .await
    }

    /// `getaddressdeltas` between two heights (inclusive).
    pub async fn get_address_deltas(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<AddressDelta>, RpcError> {
        self.call(
            "getaddressdeltas",
            (serde_json::json!({"addresses": addresses, "start": start, "end": end}),),
        )
        .await
    }

    /// `getaddresstxids` between two heights (inclusive).
    pub async fn get_address_txids(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, RpcError> {
        self.call(
            "getaddresstxids",
            (serde_json::json!({"addresses": addresses, "start": start, "end": end}),),
        )
        .await
    }

    /// `getaddressmempool`.
    pub async fn get_address_mempool(
        &self,
        addresses: &[String],
    ) -> Result<Vec<MempoolDelta>, RpcError> {
        self.call(
            "getaddressmempool",
            (serde_json::json!({"addresses": addresses}),),
        )
        .await
    }

    /// `getaddressbalance`.
    pub async fn get_address_balance(
        &self,
        addresses: &[String],
    ) -> Result<AddressBalance, RpcError> {
        self.call(
            "getaddressbalance",
            (serde_json::json!({"addresses": addresses}),),
        )
        .await
    }

    /// `getrawmempool`.
    pub async fn get_raw_mempool(&self) -> Result<Vec<String>, RpcError> {
        self.call("getrawmempool", ()).await
    }

    /// `listunspent minconf maxconf [addresses]`: the wallet's view.
    pub async fn list_unspent(
        &self,
        minconf: i64,
        maxconf: i64,
        addresses: &[String],
    ) -> Result<Vec<Unspent>, RpcError> {
        self.call("listunspent", (minconf, maxconf, addresses))
            .await
    }

    /// `getrawtransaction <txid> 1`.
    pub async fn get_raw_transaction(&self, txid: &str) -> Result<Tx, RpcError> {
        self.call("getrawtransaction", (txid, 1)).await
    }

    /// `sendcurrency <from> [outputs] minconf [fee]`: returns the operation id. Amounts are
    /// written with exactly 8 decimals from satoshis.
    pub async fn send_currency(
        &self,
        from: &str,
        outputs: &[SendOutput],
        minconf: i64,
        fee: Option<Sats>,
    ) -> Result<String, RpcError> {
        match fee {
            Some(fee) => {
                self.call("sendcurrency", (from, outputs, minconf, ExactCoins(fee)))
                    .await
            }
            None => self.call("sendcurrency", (from, outputs, minconf)).await,
        }
    }

    /// `z_getoperationstatus [opids]`: unknown opids are simply absent.
    pub async fn z_get_operation_status(
        &self,
        opids: &[String],
    ) -> Result<Vec<Operation>, RpcError> {
        self.call("z_getoperationstatus", (opids,)).await
    }

    /// `z_getoperationresult [opids]`: finished operations, which the daemon then forgets.
    pub async fn z_get_operation_result(
        &self,
        opids: &[String],
    ) -> Result<Vec<Operation>, RpcError> {
        self.call("z_getoperationresult", (opids,)).await
    }

    /// `verifymessage <address|identity> <signature> <message>`.
    pub async fn verify_message(
        &self,
        signer: &str,
        signature: &str,
        message: &str,
    ) -> Result<bool, RpcError> {
        self.call("verifymessage", (signer, signature, message))
            .await
    }

    /// The number of blocks a new wallet transaction may wait to be mined (verusd
    /// `-txexpirydelta`, 20 on VRSC by default, up to 60 on fast PBaaS chains): the expiry
    /// height of an empty `createrawtransaction` minus the next height. Nothing is stored or
    /// sent. When blocks arrive between the reads (asked again up to three times), the answer
    /// errs on the long side: the lowest tip read gives the largest delta.
    pub async fn tx_expiry_delta(&self) -> Result<i64, RpcError> {
        let mut delta = 0;
        for _ in 0..3 {
            let before = self.get_block_count().await?;
            let hex: String = self
                .call(
                    "createrawtransaction",
                    (serde_json::json!([]), serde_json::json!({})),
                )
                .await?;
            let decoded: DecodedTx = self.call("decoderawtransaction", (hex,)).await?;
            let after = self.get_block_count().await?;
            if decoded.expiryheight <= 0 {
                return Err(RpcError::Decode {
                    method: "decoderawtransaction".into(),
                    detail: "an empty transaction without an expiry height".into(),
                });
            }
            let lowest = i64::try_from(before.min(after)).unwrap_or(i64::MAX);
            delta = decoded.expiryheight - (lowest + 1);
            if before == after {
                break;
            }
        }
        Ok(delta)
    }

    /// `getcurrency <name|i-address>`.
    pub async fn get_currency(&self, currency: &str) -> Result<Currency, RpcError> {
        self.call("getcurrency", (currency,)).await
    }
}

/// What the pool reads of `decoderawtransaction`.
#[derive(Deserialize)]
struct DecodedTx {
    /// The last height the transaction may be mined at (0: none).
    #[serde(default)]
    expiryheight: i64,
}

#[derive(Serialize)]
struct Request<'a, P> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: P,
}

#[derive(Deserialize)]
struct BatchEntry {
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorObject>,
    id: u64,
}

fn rpc_error(method: &str, err: ErrorObject) -> RpcError {
    match err.code {
        RPC_IN_WARMUP => RpcError::WarmingUp(err.message),
        RPC_INVALID_ADDRESS_OR_KEY => RpcError::NotFound {
            method: method.to_owned(),
            message: err.message,
        },
        code => RpcError::Rpc {
            method: method.to_owned(),
            code,
            message: err.message,
        },
    }
}

fn decode<T: DeserializeOwned>(method: &str, raw: &RawValue) -> Result<T, RpcError> {
    serde_json::from_str(raw.get()).map_err(|e| RpcError::Decode {
        method: method.to_owned(),
        detail: e.to_string(),
    })
}

/// A short description of a transport error, with its cause chain.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_daemon_conf() {
        let conf =
            DaemonConf::parse("# c\nrpcuser=user1\nrpcpassword=passabc\nrpcport=18843\nserver=1\n");
        assert_eq!(
            conf,
            DaemonConf {
                user: Some("user1".into()),
                password: Some("passabc".into()),
                port: Some(18843)
            }
        );
    }

    #[test]
    fn retryable_errors() {
        assert!(RpcError::WarmingUp("Loading".into()).is_retryable());
        assert!(
            RpcError::Unreachable {
                url: "u".into(),
                detail: "d".into()
            }
            .is_retryable()
        );
        assert!(!RpcError::Auth.is_retryable());
        assert!(
            !RpcError::NotFound {
                method: "getidentity".into(),
                message: "x".into()
            }
            .is_retryable()
        );
    }
}
