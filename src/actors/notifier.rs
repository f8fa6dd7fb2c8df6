//! Notifier — publishes the event log to live listeners (GraphQL subscriptions, webhooks).
//!
//! **State it owns:** none in the database. It writes no state: the actor that makes a change
//! writes its event rows in the same transaction (architecture §1, §5). In memory it keeps the id of
//! the last event it published.
//!
//! **Messages:** `EventsWritten` from the chain actors after each commit that wrote events: it
//! reads the new rows of the event log in id order at once (again while a read fills a whole
//! batch). A timer every `notifier.poll_interval_ms` is the safety net, and how an instance
//! that does not lead a chain sees the events its leader writes.
//!
//! **What it sends:** every new event, once, in id order, to an [`EventFeed`]: a bounded
//! broadcast channel (`notifier.buffer` events) that never blocks the Notifier. A listener that
//! falls more than `buffer` events behind loses its place and is told to resume from its last
//! cursor; the event log keeps everything, so nothing is lost. The feed also carries the id of
//! the last published event, which wakes the webhook deliverers.
//!
//! **Failures:** a database error is logged and the same read is tried at the next tick; ids
//! follow commit order, so reading `id > last` never skips a row that commits later.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, watch};

use super::events::{EventsWritten, Shutdown};
use crate::store::events::{self, EventFilter, StoredEvent};

/// How many rows one read takes.
const BATCH: u64 = 500;

/// The live side of the event log: subscribe to receive events as they are published.
#[derive(Clone)]
pub struct EventFeed {
    tx: broadcast::Sender<Arc<StoredEvent>>,
    published: watch::Receiver<i64>,
}

impl EventFeed {
    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.tx.subscribe()
    }

    /// The id of the last published event (0 before the first).
    pub fn published(&self) -> i64 {
        *self.published.borrow()
    }

    /// A watch that changes whenever events are published.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.published.clone()
    }
}

/// The Notifier actor.
pub struct Notifier {
    db: DatabaseConnection,
    tx: broadcast::Sender<Arc<StoredEvent>>,
    published: watch::Sender<i64>,
    last: i64,
    poll: Duration,
    busy: bool,
    /// Rows were written while a read was under way: read again after it.
    again: bool,
}

impl Notifier {
    /// A notifier that starts after the event `start` (the log's last id at start-up: events
    /// before it are history, served by replay) and its feed.
    pub fn new(
        db: DatabaseConnection,
        start: i64,
        buffer: usize,
        poll: Duration,
    ) -> (Notifier, EventFeed) {
        let (tx, _) = broadcast::channel(buffer.max(1));
        let (published, watch_rx) = watch::channel(start);
        let feed = EventFeed {
            tx: tx.clone(),
            published: watch_rx,
        };
        (
            Notifier {
                db,
                tx,
                published,
                last: start,
                poll,
                busy: false,
                again: false,
            },
            feed,
        )
    }

    fn read(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        let db = self.db.clone();
        let filter = EventFilter {
            after: Some(self.last),
            ..EventFilter::default()
        };
        async move { events::list(&db, &filter, BATCH).await }
            .into_actor(self)
            .map(|result, act, ctx| {
                act.busy = false;
                match result {
                    Ok(rows) => {
                        let full = rows.len() as u64 == BATCH;
                        act.publish(rows);
                        if full || std::mem::take(&mut act.again) {
                            act.read(ctx);
                        }
                    }
                    Err(e) => log::warn!("notifier: cannot read the event log: {e}"),
                }
            })
            .spawn(ctx);
    }

    fn publish(&mut self, rows: Vec<StoredEvent>) {
        let Some(last) = rows.last().map(|e| e.id) else {
            return;
        };
        for event in rows {
            log::debug!("event {} {} published", event.id, event.event.kind);
            // An error only means nobody is listening right now.
            let _ = self.tx.send(Arc::new(event));
        }
        self.last = last;
        self.published.send_replace(last);
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!("notifier: publishing events after {}", self.last);
        ctx.run_interval(self.poll, |act, ctx| act.read(ctx));
    }
}

impl Handler<EventsWritten> for Notifier {
    type Result = ();

    fn handle(&mut self, _: EventsWritten, ctx: &mut Self::Context) {
        self.read(ctx);
    }
}

impl Handler<Shutdown> for Notifier {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
