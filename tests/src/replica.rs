//! Two directory servers holding the same data, for failover: a provider ([`Slapd::start_provider`],
//! the fixture plus the syncprov overlay) and a syncrepl consumer of it ([`Slapd::start_consumer`],
//! started empty and filled by replication over StartTLS). Both are ordinary [`Slapd`]s on
//! 127.0.0.1: killed, frozen or started again on the same ports like any other, and stopped by
//! PID on drop.
//!
//! Both widen `gecos` to UTF-8 (see `write_nis_schema` in slapd.rs): a consumer
//! checks each replicated entry against its schema, and the fixture has a non-ASCII gecos.
//!
//! The consumer replicates as the provider's rootdn (which no ACL or size limit restricts, so
//! `userPassword` and the password policy entries come across too) with `refreshAndPersist`,
//! retrying every second for ever: after the provider dies and comes back, it reconnects by
//! itself. It presents a copy of the provider's certificate (issued for 127.0.0.1 by the run's
//! CA), so one `ca_file` serves an agent configured with both.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::TestPki;
use crate::dns::NetNamespace;
use crate::fixture::{ADMIN_DN, BASE_DN, Schema};
use crate::process::poll_until;
use crate::slapd::{Layout, Security, Seed};
use crate::{Output, Slapd};

/// How long a new consumer may take to hold everything the provider holds (a refresh of a few
/// hundred entries normally takes well under a second on loopback).
const REPLICATION_LIMIT: Duration = Duration::from_secs(30);
const REPLICATION_POLL: Duration = Duration::from_millis(100);

/// Indexes syncprov and syncrepl look entries up by; without them slapd logs warnings and
/// scans the whole database on every sync.
const SYNC_INDEXES: &str = "index entryCSN,entryUUID eq\n";

/// The name [`TestPki::generate`] gives the CA, which [`copy_pki`] keeps.
const CA_FILE_NAME: &str = "ca.pem";

impl Slapd {
    /// Like [`Slapd::start`] (same fixture, TLS required, same ACLs and password policy), with
    /// the syncprov overlay: a provider that [`Slapd::start_consumer`] can replicate from.
    pub fn start_provider() -> Result<Slapd> {
        Slapd::provider(None, &[])
    }

    /// Like [`Slapd::start_provider`], inside `net` (a [`crate::dns::PrivateDns`]'s namespaces)
    /// with `dns_names` in the certificate too. Its consumers run in `net` as well and present
    /// a copy of that certificate, so list there every name either server is reached by.
    pub fn start_provider_in(net: NetNamespace, dns_names: &[&str]) -> Result<Slapd> {
        Slapd::provider(Some(net), dns_names)
    }

    fn provider(net: Option<NetNamespace>, dns_names: &[&str]) -> Result<Slapd> {
        let database_lines = format!(
            "# A replication provider: consumers' sync searches are answered from here.\n\
             {SYNC_INDEXES}overlay syncprov\n\
             # Write the contextCSN to the database every 100 changes or 1 minute.\n\
             syncprov-checkpoint 100 1\n"
        );
        Slapd::launch(Layout {
            security: Security::TlsRequired,
            utf8_gecos: true,
            extra_global: "moduleload syncprov\n".into(),
            database_lines,
            seed: Seed::Fixture(Schema::Rfc2307),
            net,
            dns_names: dns_names.iter().map(|n| (*n).to_owned()).collect(),
        })
    }

    /// A second slapd replicating `self` (a [`Slapd::start_provider`]) with syncrepl: empty at
    /// first, it pulls every entry over StartTLS (`starttls=critical`, the run's CA demanded).
    /// Returns once it holds as many entries as the provider and the reader can bind to it.
    /// It runs in the provider's namespaces, if that has its own.
    /// It shares the provider's reader and admin passwords (they are replicated entries and
    /// the same rootdn), so [`Slapd::bind_secret`] of either works against both.
    pub fn start_consumer(&self) -> Result<Slapd> {
        let expected = self.entry_count().context("counting the provider's entries")?;
        let provider_uri = self.uri_starttls();
        let admin_password = fs::read_to_string(self.admin_secret()).context("reading the provider's admin secret")?;
        let reader_password = fs::read_to_string(self.bind_secret()).context("reading the provider's bind secret")?;
        let provider_pki = self.pki().clone();
        let make_pki = move |dir: &Path| copy_pki(&provider_pki, dir);
        let ready = move |consumer: &Slapd| wait_replicated(consumer, expected);
        // The CA is the consumer's own copy (`@DIR@`: its scratch directory), so it stays
        // readable whichever of the two is dropped first.
        let database_lines = format!(
            "# A replica of {provider_uri}, kept up to date by a persistent sync search.\n\
             {SYNC_INDEXES}syncrepl rid=001\n  provider={provider_uri}\n  starttls=critical\n  \
             tls_cacert=\"@DIR@/{ca}\"\n  tls_reqcert=demand\n  bindmethod=simple\n  binddn=\"{ADMIN_DN}\"\n  \
             credentials={admin_password}\n  searchbase=\"{BASE_DN}\"\n  type=refreshAndPersist\n  \
             retry=\"1 +\"\n  network-timeout=2\n  timeout=2\n",
            ca = CA_FILE_NAME,
        );
        let layout = Layout {
            security: Security::TlsRequired,
            utf8_gecos: true,
            extra_global: String::new(),
            database_lines,
            seed: Seed::Empty { pki: &make_pki, reader_password, admin_password, ready: &ready },
            // Beside the provider: syncrepl reaches it on that namespace's 127.0.0.1.
            net: self.net(),
            dns_names: Vec::new(),
        };
        Slapd::launch(layout)
    }

    /// How many entries the rootdn sees under the base (every entry: no ACL applies to it).
    pub fn entry_count(&self) -> Result<usize> {
        let out = self.search_as_admin("(objectClass=*)", &["1.1"])?;
        if !out.status.success() {
            bail!("counting entries failed:\n{out}");
        }
        Ok(count_entries(&out))
    }
}

/// `ldapsearch -LLL` prints one `dn:` line per entry.
fn count_entries(out: &Output) -> usize {
    out.stdout().lines().filter(|l| l.starts_with("dn:")).count()
}

/// Copies `from`'s files into `dir` (same names, same modes).
fn copy_pki(from: &TestPki, dir: &Path) -> Result<TestPki> {
    let copy = |src: &Path| -> Result<std::path::PathBuf> {
        let name = src.file_name().context("a PKI file without a name")?;
        let dst = dir.join(name);
        fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
        Ok(dst)
    };
    Ok(TestPki {
        ca_pem: copy(&from.ca_pem)?,
        server_cert_pem: copy(&from.server_cert_pem)?,
        server_key_pem: copy(&from.server_key_pem)?,
        wrong_ca_pem: copy(&from.wrong_ca_pem)?,
    })
}

/// Waits (bounded) until `consumer` holds `expected` entries.
fn wait_replicated(consumer: &Slapd, expected: usize) -> Result<()> {
    let mut last = None;
    let waited = poll_until("the consumer to replicate the provider", REPLICATION_LIMIT, REPLICATION_POLL, || {
        let out = consumer.search_as_admin("(objectClass=*)", &["1.1"])?;
        // noSuchObject (32) until the base entry has arrived.
        let count = if out.status.success() { count_entries(&out) } else { 0 };
        last = Some(out);
        Ok((count == expected).then_some(()))
    });
    waited.with_context(|| {
        let got = last.as_ref().map_or(0, count_entries);
        format!("the consumer holds {got} of {expected} entries; its log:\n{}", consumer.log())
    })
}
