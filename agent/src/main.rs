//! lanyardd: reads the config, opens the socket, serves until SIGTERM or SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use lanyard_agent::cache::{Store, StoreWriter};
use lanyard_agent::cli::LanyarddArgs as Args;
use lanyard_agent::config::{Config, Transport};
use lanyard_agent::directory::LdapDirectory;
use lanyard_agent::metrics::Metrics;
use lanyard_agent::service::{Persist, Service};
use lanyard_agent::state::Health;
use tokio::net::UnixListener;
use tracing::{error, info, warn};

/// Every freed heap block is wiped first: the agent's own secrets are zeroized where they are
/// held, but the libraries it hands a password to copy it (ldap3 encodes the bind, rustls
/// buffers the plaintext record) and free those copies without wiping them.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> = zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> std::process::ExitCode {
    // SAFETY: no other thread exists yet. The variable makes the NSS module decline every lookup
    // in this process, so the agent never asks itself through nsswitch.
    unsafe { std::env::set_var(lanyard_proto::BYPASS_ENV, "1") };
    fixed_mmap_threshold();
    let args = Args::parse();
    let logging = lanyard_agent::logging::init();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            error!("refusing to start: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    logging.set_level(&config.log_level);
    match serve(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc serves blocks of at least `M_MMAP_THRESHOLD` (128 KiB) with their own mmap, returned
/// to the kernel on free; but by default, once such a block is freed, it raises the threshold to
/// that block's size (up to 32 MiB) and the trim threshold to twice that. Each Argon2id hash
/// (19 MiB, see offline.rs) is such a block: after the first, the next ones came from the
/// heap of whichever thread hashed them and stayed resident, 19 MiB per blocking thread
/// (measured: 10 MB -> 86 MB after five offline logins at 10,000 users). Setting the
/// threshold turns that sliding off (and keeps the trim threshold at its 128 KiB default):
/// every hash's memory goes back to the kernel when the hash is done.
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only changes malloc's parameters; called before any other thread exists.
    // Its return value (1 = done, 0 = refused) needs no handling: on failure glibc keeps its
    // defaults, which only cost memory.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
}

/// How often [`trim_after_bursts`] looks for a burst that has ended.
const TRIM_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Gives the heap's free pages back to the kernel once a burst of work has ended. A listing
/// (or a snapshot built from one) allocates many small blocks for a moment: 14 MB at 10,000
/// users, measured with heaptrack. What outlives it (the listing's strings, cache entries) is
/// scattered through that memory, so glibc can trim nothing from the top of its heap, and the
/// freed pages stayed resident: 16 MB of heap held 3.3 MB of live data. `malloc_trim(0)` also
/// releases whole free pages inside the heap (measured: 16 MB -> 2.4 MB). It runs once per
/// burst, a second after lookups and snapshot publications stop: trimming during a burst would
/// only make it fault the same pages in again.
async fn trim_after_bursts(metrics: Arc<Metrics>) {
    let activity = || metrics.lookups.get().wrapping_add(metrics.snapshots_published.get());
    let (mut seen, mut busy) = (activity(), false);
    let mut ticks = tokio::time::interval(TRIM_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = activity();
        if now != seen {
            (seen, busy) = (now, true);
        } else if busy {
            busy = false;
            // On a blocking thread: on a large heap the walk takes milliseconds.
            // SAFETY: malloc_trim only returns free memory to the kernel; glibc serialises it
            // with every other malloc call.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}

// One thread: a lookup is a few microseconds of work between socket waits, and keeping the
// accept loop, the handlers and the LDAP connections on one thread saves the cross-thread
// wake-ups that cost about 20 us per lookup on two cores (measured with tests/bench.sh).
// Anything CPU-heavy (password hashing, later) goes to spawn_blocking.
#[tokio::main(flavor = "current_thread")]
async fn serve(config: Config) -> anyhow::Result<()> {
    announce_risks(&config);
    let metrics = Arc::new(Metrics::default());
    let directory = LdapDirectory::with_metrics(&config.directory, metrics.clone()).map_err(anyhow::Error::msg)?;
    let (persist, writer_task) = match Store::open(&config.cache_dir) {
        Ok(store) => {
            let store = Arc::new(store);
            info!(cache = %store.path().display(), "disk cache open");
            let (writer, task) = StoreWriter::spawn(store.clone());
            (Some(Persist { store, writer }), Some(task))
        }
        Err(e) => {
            error!("no disk cache (no offline answers or logins, nothing kept across restarts): {e}");
            (None, None)
        }
    };
    let writer = persist.as_ref().map(|p| p.writer.clone());
    let health = Arc::new(Health::with_metrics(config.offline.probe_interval, metrics.clone()));
    let service = Arc::new(Service::with_metrics(directory, &config, health.clone(), persist, metrics.clone()));
    tokio::spawn(trim_after_bursts(metrics.clone()));
    let listener = bind(&config.socket)?;
    match &config.directory.discovery {
        None => info!(socket = %config.socket.display(), servers = config.directory.servers.len(), "listening"),
        Some(srv) => {
            info!(socket = %config.socket.display(), servers = %srv.record_name(), "listening; servers from DNS")
        }
    }
    // systemd (Type=notify in packaging/lanyardd.service): the socket accepts connections from
    // here on, so units ordered after lanyardd may look users up. Without NOTIFY_SOCKET (tests,
    // a shell) this does nothing; a failure to notify is logged, never fatal.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        warn!("telling systemd the agent is ready: {e}");
    }
    if let Some(address) = config.metrics.listen {
        let scrapers =
            tokio::net::TcpListener::bind(address).await.with_context(|| format!("metrics.listen {address}"))?;
        info!(%address, "serving metrics over HTTP at /metrics");
        tokio::spawn(lanyard_agent::metrics_http::serve(scrapers, Arc::new(move || metrics.render())));
    }

    tokio::spawn(service.clone().refresher());
    tokio::spawn(service.clone().keep_listings_fresh());
    // The NSS module's fast path: a snapshot beside the socket, where the module looks for it.
    if let Some(dir) = config.socket.parent() {
        service.publish_snapshots_to(dir);
        tokio::spawn(service.clone().snapshot_publisher());
    }
    let background = service.clone();
    tokio::spawn(async move {
        // Connect now, so a broken setup is in the log at once and a directory that is away
        // at start-up puts the agent offline before the first lookup waits on it.
        let warm_up = background.directory().warm_up().await;
        if let Err(e) = &warm_up {
            warn!("directory not reachable at start-up: {e}");
        }
        background.health().observe(&warm_up);
        background.health().probe_forever(background.directory()).await;
    });
    lanyard_agent::run(service.clone(), listener, shutdown_signal()).await;
    // Offline verifiers still being hashed belong on disk too: a login a moment before the stop
    // must work offline after the restart.
    service.finish_verifiers().await;
    let _ = std::fs::remove_file(&config.socket);
    if let (Some(writer), Some(task)) = (writer, writer_task) {
        // What was fetched last must be on disk for the next start (perhaps offline).
        if !writer.shutdown().await {
            warn!("some cache writes were lost at shutdown");
        }
        let _ = task.await;
    }
    info!("stopped");
    Ok(())
}

/// Settings that weaken security are said out loud at every start.
fn announce_risks(config: &Config) {
    for server in &config.directory.servers {
        if server.transport == Transport::DangerPlaintext {
            warn!(
                server = %server.uri,
                "directory.tls = \"danger-plaintext\": the bind password and every answer cross the network in clear"
            );
        }
    }
    if config.directory.service_account.is_none() {
        warn!("no directory.bind_dn: searching anonymously");
    }
}

/// Binds the socket, replacing a stale file but never a live agent's socket.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        // With a deadline: a hung agent's full backlog must not hang this start.
        let deadlines = lanyard_proto::Deadlines { connect: std::time::Duration::from_secs(1), ..Default::default() };
        if lanyard_proto::Client::connect(path, deadlines).is_ok() {
            bail!("another agent is already listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    // Every local user may look up users and groups; what each caller may ask is decided per
    // request from its SO_PEERCRED credentials.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(listener)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = int.recv() => info!("SIGINT: stopping"),
    }
}
