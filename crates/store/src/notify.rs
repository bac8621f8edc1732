//! Group commit for [`Store::mark_notified`](crate::Store::mark_notified), the same for
//! every engine: concurrent check-ins queue their requests, and whichever holds `leader`
//! writes everything queued in one transaction. Under load that turns one transaction per
//! check-in into one per writer round trip. Each engine supplies only the batch write.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use crate::model::DeviceKey;
use crate::{Error, Result};

#[derive(Default)]
pub(crate) struct NotifyQueue {
    queue: Mutex<Vec<NotifyRequest>>,
    leader: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for NotifyQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyQueue").finish_non_exhaustive()
    }
}

pub(crate) struct NotifyRequest {
    pub(crate) device: i64,
    pub(crate) package_ids: Vec<i64>,
    pub(crate) at: i64,
    // Errors travel as text: sqlx errors cannot be cloned for every waiter.
    done: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
}

impl NotifyQueue {
    /// Queues one notification and returns once a batch holding it is committed. `write`
    /// writes one batch in one transaction and hands the batch back with the outcome.
    pub(crate) async fn notify<W, F>(
        &self,
        device: DeviceKey,
        package_ids: &[i64],
        now: OffsetDateTime,
        write: W,
    ) -> Result<()>
    where
        W: FnOnce(Vec<NotifyRequest>) -> F,
        F: Future<Output = (Vec<NotifyRequest>, Result<()>)> + Send + 'static,
    {
        if package_ids.is_empty() {
            return Ok(());
        }
        let (done, mut outcome) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(NotifyRequest {
                device: device.0,
                package_ids: package_ids.to_vec(),
                at: now.unix_timestamp(),
                done,
            });
        let leader = self.leader.lock().await;
        // A previous leader may have written ours already.
        if let Ok(result) = outcome.try_recv() {
            return result.map_err(Error::Batch);
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        // Written by a task of its own, so that a check-in dropped mid-write (its client
        // went away) cannot abandon the other check-ins waiting on this batch.
        let writing = write(batch);
        let written = tokio::spawn(async move {
            let (batch, result) = writing.await;
            let result = result.map_err(|e| e.to_string());
            for request in batch {
                let _ = request.done.send(result.clone());
            }
        });
        let _ = written.await;
        drop(leader);
        match outcome.await {
            Ok(result) => result.map_err(Error::Batch),
            Err(_) => Err(Error::Batch(
                "the batch writing this notification was interrupted".to_owned(),
            )),
        }
    }
}
