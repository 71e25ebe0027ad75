//! Which configured server to try first. Servers are tried in their configured order, except
//! that one which just failed goes to the back of the line for `directory.failback`: a hung
//! primary (TCP accepts, nothing answers) would otherwise cost every new connection its whole
//! budget before the secondary is even tried. Shared by the search pool and the bind pool.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct ServerOrder {
    /// Per configured server: tried last until then.
    held_back_until: Mutex<Vec<Option<Instant>>>,
    /// The server of the last successful connection.
    last_worked: Mutex<Option<usize>>,
    /// How long a failed server waits behind the others (`directory.failback`).
    hold_back: Duration,
}

impl ServerOrder {
    pub fn new(servers: usize, hold_back: Duration) -> ServerOrder {
        ServerOrder { held_back_until: Mutex::new(vec![None; servers]), last_worked: Mutex::new(None), hold_back }
    }

    /// Indexes of the servers in the order to try them now.
    pub fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let held = self.lock();
        let (ready, held_back): (Vec<usize>, Vec<usize>) =
            (0..held.len()).partition(|&i| held[i].is_none_or(|until| until <= now));
        ready.into_iter().chain(held_back).collect()
    }

    pub fn failed(&self, server: usize) {
        if let Some(slot) = self.lock().get_mut(server) {
            *slot = Some(Instant::now() + self.hold_back);
        }
    }

    pub fn worked(&self, server: usize) {
        if let Some(slot) = self.lock().get_mut(server) {
            *slot = None;
        }
        *self.last_worked.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(server);
    }

    /// How long a failed server waits behind the others, and so how long a connection to a
    /// less preferred server is kept before the pools try the preferred one again.
    pub fn hold_back(&self) -> Duration {
        self.hold_back
    }

    /// Whether `server` failed less than `hold_back` ago.
    pub fn is_held_back(&self, server: usize) -> bool {
        self.lock().get(server).copied().flatten().is_some_and(|until| until > Instant::now())
    }

    /// The server a new connection would try first now.
    pub fn preferred(&self) -> Option<usize> {
        self.order().first().copied()
    }

    /// The index of the server of the last successful connection.
    pub fn in_use(&self) -> Option<usize> {
        *self.last_worked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        // A plain vector of times stays consistent whatever panicked while it was held.
        self.held_back_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_server_goes_last_until_its_time_is_up() {
        const HOLD_BACK: Duration = Duration::from_secs(30);
        let order = ServerOrder::new(3, HOLD_BACK);
        assert_eq!(order.order(), [0, 1, 2]);
        order.failed(0);
        assert_eq!(order.order(), [1, 2, 0]);
        tokio::time::advance(HOLD_BACK - Duration::from_millis(1)).await;
        assert_eq!(order.order(), [1, 2, 0]);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(order.order(), [0, 1, 2]);
        order.failed(1);
        order.worked(1);
        assert_eq!(order.order(), [0, 1, 2]);
    }
}
