//! WebhookDeliverer — one per `[[webhook]]`: POSTs every event (of the configured kinds and
//! chain) to the endpoint, in id order, at least once.
//!
//! **State it owns:** its row of `webhook_state` (the cursor of the last event the endpoint
//! acknowledged with a 2xx, and the failure being retried). A restart resumes after that
//! cursor; an event acknowledged just before a crash is sent again, so receivers deduplicate
//! by `X-Coinstaker-Cursor` (the idempotency key, equal to the GraphQL `Event.cursor`).
//!
//! **Messages:** `Shutdown`. It reads the event log itself, woken by the Notifier's feed (and
//! every few seconds), so it never misses an event the feed dropped.
//!
//! **What it sends:** `POST <url>` with the event as JSON (the fields of the GraphQL `Event`)
//! and the headers `X-Coinstaker-Cursor`, `X-Coinstaker-Timestamp` (Unix seconds) and
//! `X-Coinstaker-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! Receivers check the signature and refuse old timestamps (replays).
//!
//! **Failures:** anything but a 2xx in time is retried after 1 s, 2 s, 4 s, … up to
//! `max_backoff_secs`, forever, with the state and the error saved; later events wait, so the
//! endpoint sees events in order. A database error is logged and retried.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::DatabaseConnection;
use sha2::Sha256;
use tokio::sync::watch;

use super::events::Shutdown;
use crate::config::WebhookConfig;
use crate::domain::EventKind;
use crate::metrics::Metrics;
use crate::store::events::{self, EventFilter, StoredEvent};
use crate::store::webhooks;

/// How many events one read of the log takes.
const BATCH: u64 = 100;
/// The longest wait for new events when the feed stays silent.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// A stored event as the JSON a webhook receives (the fields of the GraphQL `Event`).
pub fn event_json(e: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "cursor": e.id.to_string(),
        "kind": e.event.kind.as_str(),
        "chain": e.event.chain,
        "height": e.event.height,
        "at": e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "message": e.event.message,
        "alert": e.event.alert.map(|a| a.as_str()),
        "identityAddress": e.event.identity_address,
        "blockHash": e.event.block_hash,
        "paymentId": e.event.payment_id.map(|p| p.to_string()),
        "data": e.event.data,
    })
}

/// The `X-Coinstaker-Signature` value of `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// The deliverer of one webhook.
pub struct WebhookDeliverer {
    hook: Arc<WebhookConfig>,
    db: DatabaseConnection,
    wake: watch::Receiver<i64>,
    start: i64,
    metrics: Metrics,
}

impl WebhookDeliverer {
    /// A deliverer for `hook`; a webhook seen for the first time starts after event `start`.
    pub fn new(
        hook: WebhookConfig,
        db: DatabaseConnection,
        wake: watch::Receiver<i64>,
        start: i64,
        metrics: Metrics,
    ) -> WebhookDeliverer {
        WebhookDeliverer {
            hook: Arc::new(hook),
            db,
            wake,
            start,
            metrics,
        }
    }
}

impl Actor for WebhookDeliverer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let worker = Worker {
            hook: Arc::clone(&self.hook),
            db: self.db.clone(),
            wake: self.wake.clone(),
            metrics: self.metrics.clone(),
        };
        let start = self.start;
        // Stopping the actor drops this future: an attempt in flight is abandoned and made
        // again after the restart (at least once).
        ctx.spawn(async move { worker.run(start).await }.into_actor(self));
    }
}

impl Handler<Shutdown> for WebhookDeliverer {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

struct Worker {
    hook: Arc<WebhookConfig>,
    db: DatabaseConnection,
    wake: watch::Receiver<i64>,
    metrics: Metrics,
}

impl Worker {
    fn name(&self) -> &str {
        &self.hook.name
    }

    fn filter(&self, after: i64) -> EventFilter {
        EventFilter {
            chain: self.hook.chain.clone(),
            after: Some(after),
            kinds: self
                .hook
                .kinds
                .iter()
                .filter_map(|k| EventKind::parse(k))
                .collect(),
            identity_address: None,
        }
    }

    async fn run(mut self, start: i64) {
        let client = match crate::net::client_builder()
            .timeout(Duration::from_secs(self.hook.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                log::error!("webhook {}: cannot build an HTTP client: {e}", self.name());
                return;
            }
        };
        let state = loop {
            match webhooks::get_or_create(&self.db, self.name(), start).await {
                Ok(s) => break s,
                Err(e) => {
                    log::warn!("webhook {}: cannot read its state: {e}", self.name());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        log::info!(
            "webhook {}: delivering events after {} to {}",
            self.name(),
            state.cursor,
            self.hook.url
        );
        let mut cursor = state.cursor;
        let mut attempts = state.attempts;
        loop {
            let rows = match events::list(&self.db, &self.filter(cursor), BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    log::warn!("webhook {}: cannot read the event log: {e}", self.name());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if rows.is_empty() {
                // Wait for the Notifier to publish something new (or recheck after a while;
                // also if the Notifier has stopped, as at shutdown).
                if let Ok(Err(_)) = tokio::time::timeout(IDLE_RECHECK, self.wake.changed()).await {
                    tokio::time::sleep(IDLE_RECHECK).await;
                }
                continue;
            }
            for event in rows {
                loop {
                    match self.deliver(&client, &event).await {
                        Ok(()) => {
                            if let Err(e) =
                                webhooks::advance(&self.db, self.name(), event.id, true).await
                            {
                                // Delivered but not recorded: it will be sent again (at least
                                // once); the receiver deduplicates by cursor.
                                log::warn!("webhook {}: cannot save its cursor: {e}", self.name());
                            }
                            cursor = event.id;
                            attempts = 0;
                            break;
                        }
                        Err(reason) => {
                            attempts = attempts.saturating_add(1);
                            self.metrics.webhook_failure();
                            let wait = backoff(attempts, self.hook.max_backoff_secs);
                            log::warn!(
                                "webhook {}: event {} not delivered (attempt {attempts}): {reason}; next try in {wait:?}",
                                self.name(),
                                event.id
                            );
                            if let Err(e) =
                                webhooks::record_failure(&self.db, self.name(), attempts, &reason)
                                    .await
                            {
                                log::warn!("webhook {}: cannot save its state: {e}", self.name());
                            }
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
            }
        }
    }

    /// One attempt: `Ok` on a 2xx answer.
    async fn deliver(&self, client: &reqwest::Client, event: &StoredEvent) -> Result<(), String> {
        let body = serde_json::to_vec(&event_json(event)).map_err(|e| e.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature(self.hook.secret.expose(), timestamp, &body)?;
        let response = client
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("x-coinstaker-cursor", event.id.to_string())
            .header("x-coinstaker-timestamp", timestamp.to_string())
            .header("x-coinstaker-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.hook.url))?;
        let status = response.status();
        if status.is_success() {
            log::debug!("webhook {}: event {} delivered", self.name(), event.id);
            Ok(())
        } else {
            Err(format!("the endpoint answered HTTP {status}"))
        }
    }
}

/// The wait after the `attempts`-th failure: 1 s, 2 s, 4 s, … at most `max_secs`.
pub fn backoff(attempts: i32, max_secs: u64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    Duration::from_secs(1u64.checked_shl(exp).unwrap_or(u64::MAX).min(max_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=12).map(|a| backoff(a, 300).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(i32::MAX, 300).as_secs(), 300);
    }

    #[actix_web::test]
    async fn https_endpoints_are_supported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = crate::net::client_builder().build().unwrap();
        let err = client
            .post(format!("https://127.0.0.1:{port}/hook"))
            .send()
            .await
            .unwrap_err();
        // A TLS-capable client gets as far as connecting (refused: nothing listens); one
        // without TLS would refuse the scheme before that.
        assert!(err.is_connect(), "{err:?}");
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Expected value computed independently with Python's hmac module:
        // hmac.new(b"webhook-secret-0123456789", b'1700000000.{"cursor":"7"}', sha256)
        let sig = signature(
            "webhook-secret-0123456789",
            1_700_000_000,
            br#"{"cursor":"7"}"#,
        );
        assert_eq!(
            sig.unwrap(),
            "sha256=727f30a7fa8caeda3adab678c4d6cc34e54bf2c4c5d0646eae9475d271ec6df5"
        );
    }
}
