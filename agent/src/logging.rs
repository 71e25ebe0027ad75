//! Where lanyardd's log goes and how much of it: journald when the agent runs under systemd,
//! stderr otherwise; the level from `RUST_LOG` if set, else `log_level` from the config.
//!
//! Logging starts before the config is read (so a bad config is logged like everything else)
//! at `RUST_LOG` or `info`, and [`Logging::set_level`] applies the config's level afterwards.
//!
//! Audit lines (every authentication and password change) use the target `lanyard::audit`:
//! journald stores it as `TARGET=lanyard::audit` (`journalctl TARGET=lanyard::audit`), stderr
//! prints it before each message, and `RUST_LOG=warn,lanyard::audit=info` keeps only them.
//! No event carries a password: passwords travel as `Secret`, whose `Debug` is redacted.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Where events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Journald,
    Stderr,
}

/// The installed subscriber: lets the config's level apply once it is read.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set and valid: it wins over the config.
    from_env: bool,
    pub output: Output,
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init() -> Logging {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let env_filter = env.as_deref().and_then(|v| EnvFilter::builder().parse(v).ok());
    let from_env = env_filter.is_some();
    let (filter, handle) = reload::Layer::new(env_filter.unwrap_or_else(|| EnvFilter::new("info")));
    // Under systemd stderr already reaches the journal, but as bare text: the native protocol
    // keeps the priority and the fields (TARGET, server, user) searchable. Anywhere else (a
    // terminal, a test harness capturing stderr) stderr, even where journald runs.
    let journald = stderr_is_the_journal().then(tracing_journald::layer).and_then(Result::ok);
    let output = if journald.is_some() { Output::Journald } else { Output::Stderr };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, never into a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let installed = tracing_subscriber::registry().with(filter).with(journald).with(stderr).try_init();
    if installed.is_err() {
        eprintln!("lanyardd: a logger was already installed; keeping it");
    }
    if env.is_some() && !from_env {
        tracing::warn!("RUST_LOG is not a valid filter; ignoring it");
    }
    Logging { filter: handle, from_env, output }
}

impl Logging {
    /// Applies the config's `log_level`, unless `RUST_LOG` chose already.
    pub fn set_level(&self, level: &str) {
        if self.from_env {
            return;
        }
        match EnvFilter::builder().parse(level) {
            Ok(filter) => {
                if let Err(e) = self.filter.reload(filter) {
                    tracing::warn!("cannot apply log_level = {level:?}: {e}");
                }
            }
            // The config checked it already.
            Err(e) => tracing::warn!("log_level = {level:?} is not a level: {e}"),
        }
    }
}

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` names its
/// device and inode (systemd.exec(5)), and a child with redirected stderr does not match.
fn stderr_is_the_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    let Ok(metadata) = std::fs::File::from(fd).metadata() else { return false };
    names_stream(stream.to_str().unwrap_or_default(), metadata.dev(), metadata.ino())
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`, decimal) names this device and inode.
fn names_stream(value: &str, dev: u64, ino: u64) -> bool {
    value.split_once(':').is_some_and(|(d, i)| d.parse() == Ok(dev) && i.parse() == Ok(ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_this_very_stream() {
        assert!(names_stream("64768:1234", 64768, 1234));
        assert!(!names_stream("64768:1234", 64768, 1235), "stderr redirected elsewhere");
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("garbage", 64768, 1234));
    }

    #[test]
    fn without_journal_stream_the_log_goes_to_stderr() {
        // The test runner is not a systemd service.
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert!(!stderr_is_the_journal());
        }
    }
}
