//! The directory servers and which to try first. Shared by the search pool and the bind pool.
//!
//! Servers are tried in the list's order, except that one which just failed goes to the back
//! of the line for `directory.failback`: a hung primary (TCP accepts, nothing answers) would
//! otherwise cost every new connection its whole budget before the secondary is even tried.
//!
//! The list is `directory.uris`, fixed, or the targets of `directory.domain`'s SRV records,
//! replaced whenever [`super::discovery`] finds them changed. Each replacement bumps a
//! generation number, which the pools compare on every lease: a connection made under an
//! older list is kept if its server is still listed and replaced otherwise. Servers are known
//! by URI, so a server that stays in the list keeps its hold-back across a replacement, wherever
//! it moved to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::DirectoryError;
use super::discovery::Discovery;
use crate::config::{DirectoryConfig, Server};
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct ServerOrder {
    state: Mutex<State>,
    /// Bumped (under the lock) whenever the list changes; read without it on every lease.
    generation: AtomicU64,
    /// How long a failed server waits behind the others (`directory.failback`).
    hold_back: Duration,
    /// With `directory.domain`: where the list comes from.
    discovery: Option<Discovery>,
}

#[derive(Debug)]
struct State {
    /// In order of preference.
    servers: Arc<[Server]>,
    /// Per server of `servers`: tried last until then.
    held_back_until: Vec<Option<Instant>>,
    /// The URI of the last successful connection's server.
    last_worked: Option<String>,
}

impl ServerOrder {
    /// The configured list (`uris`), or none yet and a discovery of `domain`'s SRV records.
    pub fn for_config(config: &DirectoryConfig, metrics: Arc<Metrics>) -> ServerOrder {
        let mut order = ServerOrder::new(config.servers.clone(), config.failback);
        order.discovery = config.discovery.clone().map(|spec| Discovery::new(spec, metrics));
        order
    }

    /// A fixed list.
    pub fn new(servers: Vec<Server>, hold_back: Duration) -> ServerOrder {
        let held_back_until = vec![None; servers.len()];
        let state = State { servers: servers.into(), held_back_until, last_worked: None };
        ServerOrder { state: Mutex::new(state), generation: AtomicU64::new(0), hold_back, discovery: None }
    }

    /// Makes `servers` the list, if it differs from the current one; returns whether it did.
    /// Servers in both keep their hold-back.
    pub fn replace(&self, servers: Vec<Server>) -> bool {
        let mut state = self.lock();
        if *state.servers == *servers {
            return false;
        }
        let held_back_until = servers
            .iter()
            .map(|server| state.servers.iter().position(|old| old.uri == server.uri))
            .map(|old| old.and_then(|i| state.held_back_until.get(i).copied().flatten()))
            .collect();
        state.servers = servers.into();
        state.held_back_until = held_back_until;
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Changes with every new list (see [`ServerOrder::replace`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The list, in order of preference.
    pub fn servers(&self) -> Arc<[Server]> {
        self.lock().servers.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().servers.len()
    }

    pub fn contains(&self, uri: &str) -> bool {
        self.lock().servers.iter().any(|s| s.uri == uri)
    }

    /// The servers in the order to try them now: those not held back in list order, then the
    /// held-back ones.
    pub fn plan(&self) -> Vec<Server> {
        let state = self.lock();
        let (ready, held_back) = state.ready_and_held_back();
        ready.into_iter().chain(held_back).map(|i| state.servers[i].clone()).collect()
    }

    /// Holds the server with this URI back for `hold_back`.
    pub fn failed(&self, uri: &str) {
        let mut state = self.lock();
        if let Some(i) = state.position(uri) {
            state.held_back_until[i] = Some(Instant::now() + self.hold_back);
        }
    }

    pub fn worked(&self, uri: &str) {
        let mut state = self.lock();
        // A server a refresh has just taken off the list is not the one in use.
        if let Some(i) = state.position(uri) {
            state.held_back_until[i] = None;
            state.last_worked = Some(uri.to_owned());
        }
    }

    /// How long a failed server waits behind the others, and so how long a connection to a
    /// less preferred server is kept before the pools try the preferred one again.
    pub fn hold_back(&self) -> Duration {
        self.hold_back
    }

    /// Whether the server with this URI failed less than `hold_back` ago.
    pub fn is_held_back(&self, uri: &str) -> bool {
        let state = self.lock();
        let now = Instant::now();
        state.position(uri).and_then(|i| state.held_back_until[i]).is_some_and(|until| until > now)
    }

    /// Whether a new connection would now go to a server listed before this one (the pools
    /// then replace a connection to it once it is `hold_back` old).
    pub fn prefers_another_to(&self, uri: &str) -> bool {
        let state = self.lock();
        let (ready, _) = state.ready_and_held_back();
        match (ready.first(), state.position(uri)) {
            (Some(&first), Some(this)) => first < this,
            _ => false,
        }
    }

    /// The URI of the last successful connection's server.
    pub fn in_use(&self) -> Option<String> {
        self.lock().last_worked.clone()
    }

    /// Waits (at most `budget`) for a list when discovery has none yet. Fails with why there is
    /// none: the DNS lookup's error, or that it has not answered yet.
    pub async fn wait_for_list(self: &Arc<Self>, budget: Duration) -> Result<(), DirectoryError> {
        let Some(discovery) = &self.discovery else { return Ok(()) };
        discovery.start(self);
        match discovery.first_list(budget, || self.len() > 0).await {
            Ok(()) => Ok(()),
            Err(why) => {
                discovery.lookup_soon();
                Err(DirectoryError::Unreachable(why))
            }
        }
    }

    /// No listed server could be connected to: with discovery, the records may have changed;
    /// asks for a lookup soon (at most one every few seconds).
    pub fn none_answered(&self) {
        if let Some(discovery) = &self.discovery {
            discovery.lookup_soon();
        }
    }

    /// With `directory.domain`: where the list comes from.
    pub(super) fn discovery(&self) -> Option<&Discovery> {
        self.discovery.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain values that stay consistent whatever panicked while they were held.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn position(&self, uri: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.uri == uri)
    }

    /// Indexes of the servers not held back, and of those held back, each in list order.
    fn ready_and_held_back(&self) -> (Vec<usize>, Vec<usize>) {
        let now = Instant::now();
        (0..self.servers.len()).partition(|&i| self.held_back_until[i].is_none_or(|until| until <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;

    const HOLD_BACK: Duration = Duration::from_secs(30);

    fn servers(names: &[&str]) -> Vec<Server> {
        let server = |name: &&str| Server {
            uri: format!("ldap://{name}:389"),
            host: (*name).into(),
            port: 389,
            transport: Transport::StartTls,
        };
        names.iter().map(server).collect()
    }

    fn plan(order: &ServerOrder) -> Vec<String> {
        order.plan().into_iter().map(|s| s.host).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_server_goes_last_until_its_time_is_up() {
        let order = ServerOrder::new(servers(&["a", "b", "c"]), HOLD_BACK);
        assert_eq!(plan(&order), ["a", "b", "c"]);
        order.failed("ldap://a:389");
        assert_eq!(plan(&order), ["b", "c", "a"]);
        assert!(order.is_held_back("ldap://a:389") && order.prefers_another_to("ldap://c:389"));
        assert!(!order.prefers_another_to("ldap://b:389"), "b is the first not held back");
        tokio::time::advance(HOLD_BACK - Duration::from_millis(1)).await;
        assert_eq!(plan(&order), ["b", "c", "a"]);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(plan(&order), ["a", "b", "c"]);
        assert!(order.prefers_another_to("ldap://b:389"));
        order.failed("ldap://b:389");
        order.worked("ldap://b:389");
        assert_eq!(plan(&order), ["a", "b", "c"]);
        assert_eq!(order.in_use().as_deref(), Some("ldap://b:389"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_list_keeps_the_hold_back_of_servers_that_stay_and_bumps_the_generation() {
        let order = ServerOrder::new(servers(&["a", "b", "c"]), HOLD_BACK);
        order.failed("ldap://b:389");
        let before = order.generation();
        assert!(!order.replace(servers(&["a", "b", "c"])), "the same list is no change");
        assert_eq!(order.generation(), before);

        assert!(order.replace(servers(&["b", "d", "a"])));
        assert_ne!(order.generation(), before);
        assert_eq!(plan(&order), ["d", "a", "b"], "b is still held back, wherever it moved");
        assert!(order.contains("ldap://d:389") && !order.contains("ldap://c:389"));
        order.failed("ldap://c:389");
        assert_eq!(plan(&order), ["d", "a", "b"], "a server no longer listed is not held back");
        tokio::time::advance(HOLD_BACK).await;
        assert_eq!(plan(&order), ["b", "d", "a"]);
    }

    #[tokio::test]
    async fn a_fixed_list_needs_no_waiting() {
        let order = Arc::new(ServerOrder::new(servers(&["a"]), HOLD_BACK));
        assert_eq!(order.wait_for_list(Duration::ZERO).await, Ok(()));
        order.none_answered();
        assert_eq!(order.len(), 1);
    }
}
