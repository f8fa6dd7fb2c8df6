//! ZeroMQ `hashblock` notifications from verusd (`-zmqpubhashblock`).
//!
//! A notification is only a wake-up: verusd announces just the new tip (nothing during
//! initial sync, only the final tip of a reorganisation), and a subscriber can miss
//! messages. The chain follower therefore walks heights by RPC; this module tells it when
//! to look, and reports a gap in the sequence or a daemon restart (the sequence starts
//! again at 0) so it catches up at once.
//!
//! The socket is blocking, so it lives on its own OS thread and never blocks an actix
//! arbiter; events reach the follower through a bounded channel. When the channel is full
//! the event is dropped (wake-ups coalesce) and the next one says something was missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

/// The topic verusd publishes block hashes under.
pub const TOPIC: &[u8] = b"hashblock";

/// Something unexpected about the sequence before a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// Notifications were lost: `received` came where `expected` should have.
    Gap {
        /// The sequence number that should have come.
        expected: u32,
        /// The one that came.
        received: u32,
    },
    /// The sequence started again at 0: the daemon restarted.
    Restarted,
    /// Our own channel was full and notifications were dropped here.
    Overflow,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockNotification {
    /// The new tip's hash (display order, as RPC prints it).
    pub hash: String,
    /// verusd's sequence number of this notifier.
    pub sequence: u32,
    /// Set when notifications were missed before this one: catch up by height.
    pub anomaly: Option<Anomaly>,
}

/// Follows the 4-byte little-endian sequence numbers and spots gaps and restarts.
#[derive(Debug, Default, Clone)]
pub struct SequenceTracker {
    last: Option<u32>,
}

impl SequenceTracker {
    /// Records `sequence` and says whether anything was missed before it.
    pub fn observe(&mut self, sequence: u32) -> Option<Anomaly> {
        let anomaly = match self.last {
            None => None,
            Some(last) if sequence == last.wrapping_add(1) => None,
            Some(_) if sequence == 0 => Some(Anomaly::Restarted),
            Some(last) => Some(Anomaly::Gap {
                expected: last.wrapping_add(1),
                received: sequence,
            }),
        };
        self.last = Some(sequence);
        anomaly
    }
}

/// Why a multipart message is not a `hashblock` notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not three frames.
    #[error("expected 3 frames (topic, hash, sequence), got {0}")]
    FrameCount(usize),
    /// Another topic (e.g. `hashtx` on a shared endpoint).
    #[error("topic {0:?} is not hashblock")]
    Topic(String),
    /// The hash is not 32 bytes.
    #[error("hash frame has {0} bytes, expected 32")]
    HashLength(usize),
    /// The sequence is not 4 bytes.
    #[error("sequence frame has {0} bytes, expected 4")]
    SequenceLength(usize),
}

/// Reads the frames of one message: (hash as hex, sequence).
pub fn parse_frames(frames: &[Vec<u8>]) -> Result<(String, u32), FrameError> {
    let [topic, hash, sequence] = frames else {
        return Err(FrameError::FrameCount(frames.len()));
    };
    if topic.as_slice() != TOPIC {
        return Err(FrameError::Topic(
            String::from_utf8_lossy(topic).into_owned(),
        ));
    }
    if hash.len() != 32 {
        return Err(FrameError::HashLength(hash.len()));
    }
    let seq: [u8; 4] = sequence
        .as_slice()
        .try_into()
        .map_err(|_| FrameError::SequenceLength(sequence.len()))?;
    // The daemon already reversed the hash into display order: hex of the bytes in order.
    let hex = hash.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, u32::from_le_bytes(seq)))
}

/// A running subscriber thread; dropping it does not stop it, [`ZmqListener::stop`] does.
pub struct ZmqListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ZmqListener {
    /// Connects a SUB socket to `url` on a new thread and forwards notifications to `sink`.
    /// `connect` returns at once even when nothing listens yet; libzmq reconnects by itself.
    pub fn spawn(
        chain: &str,
        url: &str,
        sink: mpsc::Sender<BlockNotification>,
    ) -> Result<ZmqListener, zmq::Error> {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::SUB)?;
        socket.set_subscribe(TOPIC)?;
        socket.set_rcvtimeo(250)?;
        socket.set_reconnect_ivl(500)?;
        socket.set_reconnect_ivl_max(5_000)?;
        socket.connect(url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let chain = chain.to_owned();
        let url = url.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("zmq-{chain}"))
            .spawn(move || {
                let _context = context;
                let mut tracker = SequenceTracker::default();
                let mut overflowed = false;
                log::info!("chain {chain}: listening for ZMQ hashblock at {url}");
                while !flag.load(Ordering::Relaxed) {
                    let frames = match socket.recv_multipart(0) {
                        Ok(f) => f,
                        Err(zmq::Error::EAGAIN) => continue,
                        Err(zmq::Error::ETERM) => break,
                        Err(e) => {
                            log::warn!("chain {chain}: ZMQ receive failed: {e}");
                            std::thread::sleep(Duration::from_millis(500));
                            continue;
                        }
                    };
                    let (hash, sequence) = match parse_frames(&frames) {
                        Ok(v) => v,
                        Err(e) => {
                            log::warn!("chain {chain}: ignoring a ZMQ message: {e}");
                            continue;
                        }
                    };
                    let mut anomaly = tracker.observe(sequence);
                    if overflowed {
                        anomaly = anomaly.or(Some(Anomaly::Overflow));
                    }
                    match anomaly {
                        Some(Anomaly::Gap { expected, received }) => log::warn!(
                            "chain {chain}: ZMQ sequence jumped from {expected} to {received}: notifications were lost; catching up by height"
                        ),
                        Some(Anomaly::Restarted) => {
                            log::warn!("chain {chain}: ZMQ sequence restarted at 0: the daemon restarted; catching up by height")
                        }
                        _ => {}
                    }
                    match sink.try_send(BlockNotification { hash, sequence, anomaly }) {
                        Ok(()) => overflowed = false,
                        Err(mpsc::error::TrySendError::Full(_)) => overflowed = true,
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            })
            .map_err(|_| zmq::Error::EMFILE)?;
        Ok(ZmqListener {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one receive timeout).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_and_restarts() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.observe(7), None, "the first message starts the count");
        assert_eq!(t.observe(8), None);
        assert_eq!(
            t.observe(10),
            Some(Anomaly::Gap {
                expected: 9,
                received: 10
            })
        );
        assert_eq!(t.observe(0), Some(Anomaly::Restarted));
        assert_eq!(t.observe(1), None);
        let mut t = SequenceTracker::default();
        t.observe(u32::MAX);
        assert_eq!(t.observe(0), None, "the counter wraps at 2^32");
    }

    #[test]
    fn frames_are_checked() {
        let hash = vec![0xab; 32];
        let ok = parse_frames(&[TOPIC.to_vec(), hash.clone(), 1207u32.to_le_bytes().to_vec()]);
        assert_eq!(ok, Ok(("ab".repeat(32), 1207)));
        assert_eq!(
            parse_frames(&[b"hashtx".to_vec(), hash.clone(), vec![0; 4]]),
            Err(FrameError::Topic("hashtx".into()))
        );
        assert_eq!(
            parse_frames(&[b"hashblockx".to_vec(), hash.clone(), vec![0; 4]]),
            Err(FrameError::Topic("hashblockx".into())),
            "a longer topic with the same prefix passes the socket filter but not this check"
        );
        assert_eq!(
            parse_frames(&[TOPIC.to_vec(), vec![1; 31], vec![0; 4]]),
            Err(FrameError::HashLength(31))
        );
        assert_eq!(
            parse_frames(&[TOPIC.to_vec(), hash, vec![0; 3]]),
            Err(FrameError::SequenceLength(3))
        );
        assert_eq!(
            parse_frames(&[TOPIC.to_vec()]),
            Err(FrameError::FrameCount(1))
        );
    }
}
