//! Cache writes leave the request path here. [`WriterHandle::send`] queues a [`Write`] and
//! returns at once; one task gathers the queue into batches and commits each batch in one redb
//! transaction, on a blocking thread.
//!
//! Why: a commit is an fsync (about a millisecond on an SSD, far more on a busy disk). The
//! agent runs a current_thread runtime, so one fsync on it would stall every lookup, and one
//! per write would make a burst of logins queue behind the disk. A batch closes at [`BATCH`]
//! writes or [`LINGER`] after its first write, whichever comes first, and costs one fsync. The
//! queue is bounded: when the disk cannot keep up, writes are dropped. It is a cache; the
//! directory still has the truth, and memory still has the answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::store::{Store, Write};

/// Writes waiting for the writer; past this, [`WriterHandle::send`] drops them.
pub const QUEUE: usize = 4096;
/// Most writes in one commit.
pub const BATCH: usize = 256;
/// Longest a write waits for others to share its commit.
pub const LINGER: Duration = Duration::from_millis(50);
/// Failed commits are reported at most this often (a full disk fails every batch).
const WARN_EVERY: Duration = Duration::from_secs(10);

enum Command {
    Write(Write),
    /// Answered once everything queued before it is committed: whether it all was.
    Flush(oneshot::Sender<bool>),
    /// A flush, after which the writer stops.
    Stop(oneshot::Sender<bool>),
}

/// Sends writes to the writer task. Cheap to clone; the task ends when every handle is gone
/// (or on [`WriterHandle::shutdown`]), after committing what was queued.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Command>,
}

impl WriterHandle {
    /// Queues `write` without waiting; drops it (with a debug line) when the queue is full or
    /// the writer has stopped.
    pub fn send(&self, write: Write) {
        match self.queue.try_send(Command::Write(write)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => debug!("cache write queue full: a write was dropped"),
            Err(TrySendError::Closed(_)) => debug!("cache writer stopped: a write was dropped"),
        }
    }

    /// Resolves when everything sent before it is committed (or failed): true if every commit
    /// since the last flush succeeded, false if one failed or the writer has stopped. Writes
    /// dropped at [`WriterHandle::send`] were never queued and do not count.
    pub async fn flush(&self) -> bool {
        self.ask(Command::Flush).await
    }

    /// Like [`WriterHandle::flush`], then stops the writer; later writes are dropped.
    pub async fn shutdown(&self) -> bool {
        self.ask(Command::Stop).await
    }

    async fn ask(&self, command: impl FnOnce(oneshot::Sender<bool>) -> Command) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(command(reply)).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// How a batch ended, besides being full or due.
enum End {
    Full,
    Due,
    Flush(oneshot::Sender<bool>),
    /// Stop, answering the sender if there is one (none when every handle was dropped).
    Stop(Option<oneshot::Sender<bool>>),
}

/// The writer task's state.
pub struct StoreWriter {
    store: Arc<Store>,
    queue: mpsc::Receiver<Command>,
    /// Whether every commit since the last flush succeeded.
    all_committed: bool,
    failures: FailureLog,
}

impl StoreWriter {
    /// Starts the writer task on the current runtime. The task ends after every handle is
    /// dropped or [`WriterHandle::shutdown`], with everything queued before committed.
    pub fn spawn(store: Arc<Store>) -> (WriterHandle, JoinHandle<()>) {
        let (sender, queue) = mpsc::channel(QUEUE);
        let writer = StoreWriter { store, queue, all_committed: true, failures: FailureLog::default() };
        (WriterHandle { queue: sender }, tokio::spawn(writer.run()))
    }

    async fn run(mut self) {
        while let Some(first) = self.queue.recv().await {
            let (batch, end) = self.gather(first).await;
            self.commit(batch).await;
            match end {
                End::Full | End::Due => {}
                End::Flush(reply) => self.answer(reply),
                End::Stop(reply) => {
                    if let Some(reply) = reply {
                        self.answer(reply);
                    }
                    return;
                }
            }
        }
    }

    /// Collects writes, starting with `first`, until the batch is full, due, or a command
    /// ends it early.
    async fn gather(&mut self, first: Command) -> (Vec<Write>, End) {
        let due = Instant::now() + LINGER;
        let mut batch = Vec::new();
        let mut next = first;
        loop {
            match next {
                Command::Write(write) => batch.push(write),
                Command::Flush(reply) => return (batch, End::Flush(reply)),
                Command::Stop(reply) => return (batch, End::Stop(Some(reply))),
            }
            if batch.len() >= BATCH {
                return (batch, End::Full);
            }
            next = tokio::select! {
                biased;
                command = self.queue.recv() => match command {
                    Some(command) => command,
                    None => return (batch, End::Stop(None)),
                },
                () = tokio::time::sleep_until(due) => return (batch, End::Due),
            };
        }
    }

    async fn commit(&mut self, batch: Vec<Write>) {
        if batch.is_empty() {
            return;
        }
        let store = self.store.clone();
        let writes = batch.len();
        let error = match tokio::task::spawn_blocking(move || store.apply(&batch)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the commit panicked ({e})"),
        };
        self.all_committed = false;
        self.failures.record(writes, &error);
    }

    fn answer(&mut self, reply: oneshot::Sender<bool>) {
        // The asker may have given up waiting; nothing to tell then.
        let _ = reply.send(self.all_committed);
        self.all_committed = true;
    }
}

/// Failed commits, reported at most every [`WARN_EVERY`] with a count of what was lost since.
#[derive(Default)]
struct FailureLog {
    last_warning: Option<Instant>,
    commits: u64,
    writes: u64,
}

impl FailureLog {
    fn record(&mut self, writes: usize, error: &str) {
        self.commits += 1;
        self.writes += writes as u64;
        let now = Instant::now();
        if self.last_warning.is_some_and(|last| now.duration_since(last) < WARN_EVERY) {
            return;
        }
        warn!(
            "cache commit failed: {error}; {} writes lost in {} failed commits since the last warning \
             (serving from memory and the directory)",
            self.writes, self.commits
        );
        *self = FailureLog { last_warning: Some(now), commits: 0, writes: 0 };
    }
}

#[cfg(test)]
mod tests;
