//! Persistent connections to the directory, bound as the service account.
//!
//! ldap3 multiplexes concurrent operations over one connection, so the pool is a few slots,
//! each holding one live connection, handed out round-robin. A slot connects lazily: the first
//! request that finds it empty (or its connection closed) connects, trying the servers in
//! `ServerOrder`'s order, while requests for that slot wait on its lock instead of
//! stampeding the directory. A connection that fails an operation is discarded by the caller;
//! one whose server left the list (DNS SRV records changed) is replaced on its next lease.
//!
//! Logins use a second pool of the same shape whose connections are never bound as the
//! service account ([`Identity::BindsPerUse`]): a bind changes the identity of every operation
//! multiplexed on a connection, and RFC 4511 4.2.1 forbids other operations while a bind is
//! outstanding, so those connections are lent out exclusively ([`Pool::lease_exclusive`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, StdStream};
use rustls::ClientConfig;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::DirectoryError;
use super::servers::ServerOrder;
use crate::config::{DirectoryConfig, Server, ServiceAccount, Transport};
use crate::metrics::{BindKind, BindResult, Metrics, OpenConnection};

/// The most servers one connect tries (see `connect_any`).
const SERVERS_PER_CONNECT: usize = 3;

/// A live connection lent out by the pool. Unless [`Lease::keep`] is called, dropping it
/// discards the connection: an operation that failed, stalled or was cancelled (the
/// request's budget ran out) leaves no suspect connection behind for the next request.
pub struct Lease<'a> {
    pub ldap: Ldap,
    /// Which server this connection goes to (its URI): for logs, and the one to hold back if
    /// it stops answering.
    pub server: Arc<str>,
    pool: &'a Pool,
    slot: usize,
    serial: u64,
    keep: bool,
}

impl Lease<'_> {
    /// The connection answered: it may serve the next request.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Not async in Drop: if someone holds the slot they are replacing it anyway.
        if let Ok(mut live) = self.pool.slots[self.slot].try_lock()
            && live.as_ref().is_some_and(|conn| conn.serial == self.serial)
        {
            debug!(server = %self.server, "discarding a connection that failed or stalled");
            *live = None;
        }
    }
}

struct Live {
    ldap: Ldap,
    /// The server's URI, and since when: a connection to a less preferred server is replaced
    /// once it is `failback` old and a better one is no longer held back.
    server: Arc<str>,
    connected_at: Instant,
    /// The list's generation when the server was last seen in it.
    generation: u64,
    serial: u64,
    /// Counts the connection in the metrics while it is held.
    _open: OpenConnection,
}

/// Who a pool's connections are bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The configured service account (or anonymous without one), bound once per connection.
    ServiceAccount,
    /// Nobody at connect time: each user of an exclusive lease binds as whoever it checks.
    BindsPerUse,
}

/// A connection lent to one user at a time, for binds as end users. Like [`Lease`], it is
/// discarded when dropped unless [`ExclusiveLease::keep`] was called: a bind cancelled halfway
/// must not leave its connection to the next login.
pub struct ExclusiveLease<'a> {
    pub ldap: Ldap,
    pub server: Arc<str>,
    slot: MutexGuard<'a, Option<Live>>,
    keep: bool,
}

impl ExclusiveLease<'_> {
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for ExclusiveLease<'_> {
    fn drop(&mut self) {
        if !self.keep {
            *self.slot = None;
        }
    }
}

pub struct Pool {
    order: Arc<ServerOrder>,
    tls: Arc<ClientConfig>,
    account: Option<(String, Zeroizing<String>)>,
    timeout: Duration,
    slots: Vec<Mutex<Option<Live>>>,
    next_slot: AtomicUsize,
    next_serial: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Pool {
    pub fn new(
        config: &DirectoryConfig,
        tls: Arc<ClientConfig>,
        order: Arc<ServerOrder>,
        identity: Identity,
        metrics: Arc<Metrics>,
    ) -> Pool {
        let account = match identity {
            Identity::BindsPerUse => None,
            Identity::ServiceAccount => config.service_account.as_ref().map(|ServiceAccount { dn, password }| {
                // Checked to be UTF-8 when the config was read; ldap3's bind takes a &str.
                (dn.clone(), Zeroizing::new(String::from_utf8_lossy(password.expose()).into_owned()))
            }),
        };
        Pool {
            order,
            tls,
            account,
            timeout: config.timeout,
            slots: (0..config.pool_size).map(|_| Mutex::new(None)).collect(),
            next_slot: AtomicUsize::new(0),
            next_serial: AtomicU64::new(0),
            metrics,
        }
    }

    /// A live connection, connecting (servers in order) if this slot has none.
    pub async fn lease(&self) -> Result<Lease<'_>, DirectoryError> {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut live = self.slots[slot].lock().await;
        let conn = self.ensure_connected(&mut live).await?;
        let (ldap, server, serial) = (conn.ldap.clone(), conn.server.clone(), conn.serial);
        drop(live);
        Ok(Lease { ldap, server, pool: self, slot, serial, keep: false })
    }

    /// A connection nobody else uses until the lease is dropped: a free slot if there is one,
    /// otherwise the next slot in turn once its user is done.
    pub async fn lease_exclusive(&self) -> Result<ExclusiveLease<'_>, DirectoryError> {
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let free = (0..self.slots.len()).find_map(|i| self.slots[(start + i) % self.slots.len()].try_lock().ok());
        let mut slot = match free {
            Some(guard) => guard,
            None => self.slots[start % self.slots.len()].lock().await,
        };
        let conn = self.ensure_connected(&mut slot).await?;
        let (ldap, server) = (conn.ldap.clone(), conn.server.clone());
        Ok(ExclusiveLease { ldap, server, slot, keep: false })
    }

    /// Connects an empty slot in the background, so the login after a retired connection (see
    /// `AfterUse::Retire`) does not wait for a TLS handshake. Best effort: if every slot is
    /// connected this changes nothing, and a failure only shows in the log and the metrics.
    pub fn refill_in_background(self: &Arc<Self>) {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            if let Ok(lease) = pool.lease_exclusive().await {
                lease.keep();
            }
        });
    }

    /// The slot's connection, connecting first if it has none or it closed.
    async fn ensure_connected<'s>(&self, live: &'s mut Option<Live>) -> Result<&'s mut Live, DirectoryError> {
        if let Some(conn) = live.as_mut()
            && conn.ldap.is_closed()
        {
            debug!(server = %conn.server, "connection closed; reconnecting");
            *live = None;
        }
        // Read before looking the server up: a list replaced meanwhile is seen next time.
        let generation = self.order.generation();
        if let Some(conn) = live.as_mut()
            && conn.generation != generation
        {
            if self.order.contains(&conn.server) {
                conn.generation = generation;
            } else {
                info!(server = %conn.server, "replacing a connection to a server no longer in the list");
                *live = None;
            }
        }
        if let Some(conn) = live.as_ref()
            && self.order.is_held_back(&conn.server)
        {
            // Its server stopped answering on another connection: this one would likely stall too.
            info!(server = %conn.server, "replacing a connection to a server that stopped answering");
            *live = None;
        }
        if let Some(conn) = live.as_ref()
            && self.order.prefers_another_to(&conn.server)
            && conn.connected_at.elapsed() >= self.order.hold_back()
        {
            // Back to the preferred server once it has served its hold-back; if it is still
            // down, connect_any holds it back again and this slot lands where it was.
            info!(server = %conn.server, "replacing a connection to a fallback server: a preferred one may be back");
            *live = None;
        }
        if live.is_none() {
            let (ldap, server) = self.connect_any().await?;
            let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
            let _open = self.metrics.connection_opened(&server);
            *live = Some(Live { ldap, server, connected_at: Instant::now(), generation, serial, _open });
        }
        live.as_mut().ok_or_else(|| DirectoryError::Unreachable("connection vanished".into()))
    }

    /// Leases each slot once, which connects the empty ones.
    pub async fn connect_all(&self) -> Result<(), DirectoryError> {
        for _ in 0..self.slots.len() {
            self.lease().await?.keep();
        }
        Ok(())
    }

    /// Connects to the first server that accepts us, logging why each one before it did not.
    /// Each server gets an equal share of `directory.timeout`: a hung first server (TCP
    /// accepted, nothing answers) must leave the next one time to answer within one budget.
    /// With discovery and no list yet, waits for the first DNS lookup for half the budget.
    async fn connect_any(&self) -> Result<(Ldap, Arc<str>), DirectoryError> {
        self.order.wait_for_list(self.timeout / 2).await?;
        let mut failures = Vec::new();
        // A few servers per connect, each with a fair share of the budget: an AD domain lists
        // every DC, and thirty shares of three seconds would leave none enough for a
        // handshake. Those not tried now come first next time, as the tried ones are held back.
        let mut plan = self.order.plan();
        plan.truncate(SERVERS_PER_CONNECT);
        let share = self.timeout / u32::try_from(plan.len().max(1)).unwrap_or(u32::MAX);
        for server in &plan {
            match tokio::time::timeout(share, self.connect(server)).await {
                Ok(Ok(ldap)) => {
                    self.order.worked(&server.uri);
                    info!(server = %server.uri, "connected to the directory");
                    self.read_certificate_expiry(server);
                    return Ok((ldap, server.uri.as_str().into()));
                }
                Ok(Err(why)) => {
                    self.order.failed(&server.uri);
                    warn!(server = %server.uri, "cannot use this directory server: {why}");
                    failures.push(format!("{}: {why}", server.uri));
                }
                Err(_) => {
                    self.order.failed(&server.uri);
                    let why = format!("no answer within {share:?} (its share of directory.timeout)");
                    warn!(server = %server.uri, "cannot use this directory server: {why}");
                    failures.push(format!("{}: {why}", server.uri));
                }
            }
        }
        self.order.none_answered();
        Err(DirectoryError::Unreachable(failures.join("; ")))
    }

    /// Reads `server`'s certificate expiry into the metrics, in the background and at most
    /// hourly: an extra handshake, never on a request's path.
    fn read_certificate_expiry(&self, server: &Server) {
        if server.transport == Transport::DangerPlaintext || !self.metrics.certificate_read_due(&server.uri) {
            return;
        }
        let (server, tls, timeout, metrics) = (server.clone(), self.tls.clone(), self.timeout, self.metrics.clone());
        tokio::spawn(async move {
            match super::inspect::probe_tls(&server, tls, timeout).await {
                Ok(Some(report)) => match report.not_after {
                    Some(not_after) => metrics.set_certificate_expiry(&server.uri, not_after),
                    None => debug!(server = %server.uri, "the certificate's expiry could not be read"),
                },
                Ok(None) => {}
                Err(why) => debug!(server = %server.uri, "cannot read the certificate's expiry: {why}"),
            }
        });
    }

    async fn connect(&self, server: &Server) -> Result<Ldap, String> {
        let tcp = tokio::net::TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|e| format!("TCP connect to {}:{}: {e}", server.host, server.port))?;
        // ldap3 never sets TCP_NODELAY; without it the first operation waits ~40 ms (NOTES.md).
        tcp.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let tcp = tcp.into_std().map_err(|e| format!("socket: {e}"))?;
        let settings = LdapConnSettings::new()
            .set_std_stream(StdStream::Tcp(tcp))
            .set_config(self.tls.clone())
            .set_starttls(server.transport == Transport::StartTls);
        // ldap3 reads the scheme (ldap/ldaps) and the host name (for certificate checks) from
        // the URI; the stream is already connected.
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(settings, &server.uri).await.map_err(|e| describe(&e, server))?;
        let uri = server.uri.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                debug!(server = %uri, "connection ended: {e}");
            }
        });
        if let Some((dn, password)) = &self.account {
            let result = ldap.simple_bind(dn, password).await;
            self.metrics.bind(BindKind::Service, result.as_ref().map_or(BindResult::Error, |r| bind_result(r.rc)));
            let result = result.map_err(|e| describe(&e, server))?;
            if result.rc != 0 {
                return Err(format!("service bind as {dn} refused: {}", ldap3_result_text(result.rc, &result.text)));
            }
        }
        Ok(ldap)
    }
}

/// An administrator's reading of a connection error: TLS problems say which setting to check.
fn describe(error: &ldap3::LdapError, server: &Server) -> String {
    use ldap3::LdapError;
    match error {
        LdapError::Io { source } => match source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => format!(
                "TLS handshake failed: {tls} (the server's certificate must chain to directory.ca_file and name {:?})",
                server.host
            ),
            None => format!("I/O error: {source}"),
        },
        LdapError::LdapResult { result } if server.transport == Transport::StartTls && result.rc != 0 => {
            format!("StartTLS refused: {}", ldap3_result_text(result.rc, &result.text))
        }
        other => other.to_string(),
    }
}

/// A bind's result code as the metrics count it.
pub fn bind_result(rc: u32) -> BindResult {
    match rc {
        0 => BindResult::Success,
        49 => BindResult::InvalidCredentials,
        _ => BindResult::Error,
    }
}

pub fn ldap3_result_text(rc: u32, text: &str) -> String {
    let name = match rc {
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "",
    };
    let hint = match rc {
        // Enumeration is paged (RFC 2696); a server that still stops it caps the total, not
        // the page (slapd: `limits ... size.prtotal=unlimited` for the service account).
        4 => "; the server caps how many entries the service account may read: raise that limit",
        _ => "",
    };
    let described = match (name, text.is_empty()) {
        ("", true) => format!("result code {rc}"),
        ("", false) => format!("result code {rc}: {text}"),
        (name, true) => format!("{name} ({rc})"),
        (name, false) => format!("{name} ({rc}): {text}"),
    };
    format!("{described}{hint}")
}
