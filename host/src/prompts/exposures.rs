//! Recording A/B exposures without slowing `resolve`: [`ExposureSink`] hands each exposure to a
//! background task through a bounded channel, which writes them in batches
//! (`ON CONFLICT DO NOTHING`, so the first assignment of a task is kept).
//!
//! The writer wakes for the first exposure of a batch, then lets the others gather for
//! [`GATHER`] before it writes them all in one transaction. Waking per exposure cost more than
//! writing it: at tens of thousands of new tasks a second, every `try_send` woke the idle writer
//! on the other core (a futex wake and a context switch), and every small batch paid a
//! transaction. An exposure is therefore in the database within about [`GATHER`] plus one write.
//!
//! When the channel is full (the database is slower than the resolve rate), the exposure is
//! **dropped**, counted, and logged: resolve never waits. Nothing is lost for good in the common
//! case, because assignment is a pure hash: the task's next resolve (a retry, the next step)
//! sends the same exposure again. Drops fall on both arms alike, so they cost precision, not
//! balance (no sample-ratio mismatch). Exposures still queued when the process exits are lost
//! the same way. Without a tokio runtime (some tests, tools) exposures are written inline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Exposure, Store};

/// Exposures queued at most before new ones are dropped.
pub const EXPOSURE_QUEUE: usize = 10_000;
/// Exposures written per transaction at most.
const BATCH: usize = 2048;
/// How long exposures gather after the first of a batch arrives.
const GATHER: Duration = Duration::from_millis(50);

/// The non-blocking writer of exposures.
pub(crate) struct ExposureSink {
    queue: Option<mpsc::Sender<Exposure>>,
    store: Arc<dyn Store>,
    dropped: Arc<AtomicU64>,
}

impl ExposureSink {
    /// A sink over `store`; spawns its writer on the current tokio runtime, if any.
    pub(crate) fn new(store: Arc<dyn Store>) -> ExposureSink {
        let queue = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (sender, receiver) = mpsc::channel(EXPOSURE_QUEUE);
            runtime.spawn(write_batches(store.clone(), receiver));
            sender
        });
        ExposureSink {
            queue,
            store,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues an exposure; never waits for the database when a writer runs.
    pub(crate) async fn record(&self, exposure: Exposure) {
        let Some(queue) = &self.queue else {
            if let Err(error) = self.store.record_exposures(&[exposure]).await {
                tracing::warn!(%error, "could not record an A/B exposure");
            }
            return;
        };
        if queue.try_send(exposure).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Log the 1st, 2nd, 4th, 8th… drop: a full queue must not flood the log too.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "A/B exposure queue full: exposure dropped (the task's next resolve records it)"
                );
            }
        }
    }

    /// Exposures dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Exposure>) {
    let mut batch = Vec::with_capacity(BATCH);
    // Asleep on the channel until an exposure arrives (a closed, drained channel ends the loop).
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            // Not polling the channel meanwhile: senders wake nobody while the batch gathers.
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                let Ok(exposure) = receiver.try_recv() else {
                    break;
                };
                batch.push(exposure);
            }
        }
        if let Err(error) = store.record_exposures(&batch).await {
            tracing::warn!(%error, count = batch.len(), "could not record A/B exposures");
        }
        batch.clear();
    }
}
