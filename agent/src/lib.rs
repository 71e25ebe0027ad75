//! lanyardd, the Lanyard agent: every lookup and (later) login from the NSS and PAM modules
//! arrives on its Unix socket and is answered from memory or the directory.
//!
//! Data flows one way: [`listener`] (accept, peer credentials, limits) → [`handler`] (one
//! connection, frames, deadlines) → [`service`] (request → response, no sockets) → [`cache`] /
//! [`directory`] (LDAP over TLS). [`config`] is read once, at start-up.

pub mod cache;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod directory;
pub mod doctor;
mod duration;
pub mod handler;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
pub mod offline;
pub mod policy;
mod ratelimit;
pub mod service;
pub mod snapshot;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use tokio::net::UnixListener;

use crate::directory::Directory;
use crate::service::Service;

/// Serves `listener` until `shutdown` completes.
pub async fn run<D: Directory>(service: Arc<Service<D>>, listener: UnixListener, shutdown: impl Future<Output = ()>) {
    listener::accept_loop(listener, service, shutdown).await;
}
