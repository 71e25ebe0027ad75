//! Where the directory servers come from: `directory.uris` (a fixed list, tried in order) or
//! `directory.domain` (DNS SRV records, RFC 2782, looked up by the agent while it runs).

use super::raw::{RawDirectory, RawTls};
use super::{ConfigError, DirectoryConfig, ErrorFn, Server, Transport};

/// `directory.domain`: the servers are the targets of the domain's SRV records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvDiscovery {
    /// As configured, in lower case, without a trailing dot.
    pub domain: String,
    /// `StartTls` and `DangerPlaintext`: `_ldap._tcp.<domain>`, `ldap://` servers; `Ldaps`:
    /// `_ldaps._tcp.<domain>`, `ldaps://` servers.
    pub transport: Transport,
}

impl SrvDiscovery {
    /// The name whose SRV records list the servers, `_ldap._tcp.example.org`.
    pub fn record_name(&self) -> String {
        let service = if self.transport == Transport::Ldaps { "_ldaps" } else { "_ldap" };
        format!("{service}._tcp.{}", self.domain)
    }

    /// The server an SRV record names. The target keeps its DNS name: the server's certificate
    /// must name it, as it must name the host of a URI in `uris`.
    ///
    /// Only a plain host name in `domain` (the domain itself or below it) is taken. DNS answers
    /// are not authenticated: a forged record naming `ldap.attacker.example`, for which a
    /// certificate from a public CA is cheap, would otherwise pass TLS and take every login.
    /// Servers elsewhere belong in `uris`.
    pub fn server(&self, target: &str, port: u16) -> Result<Server, String> {
        let host = check_domain(target).map_err(|why| format!("SRV target {target:?} refused: {why}"))?;
        if host != self.domain && !host.ends_with(&format!(".{}", self.domain)) {
            return Err(format!(
                "SRV target {host:?} refused: not in {} (list such servers in directory.uris)",
                self.domain
            ));
        }
        let scheme = if self.transport == Transport::Ldaps { "ldaps" } else { "ldap" };
        let uri = format!("{scheme}://{host}:{port}");
        // The name TLS checks (ldap3 reads it from the URI) must be the name connected to.
        let parsed = url::Url::parse(&uri).map_err(|e| format!("SRV target {host:?}: {e}"))?;
        if parsed.host_str() != Some(host.as_str()) {
            return Err(format!("SRV target {host:?} does not survive as a URI host"));
        }
        Ok(Server { uri, host, port, transport: self.transport })
    }
}

impl DirectoryConfig {
    /// The server with this URI, as the agent would use it: one from `uris`, or one that the
    /// SRV records of `domain` could name (for `lanyardctl status`, which is told a URI).
    pub fn server_named(&self, uri: &str) -> Option<Server> {
        if let Some(server) = self.servers.iter().find(|s| s.uri == uri) {
            return Some(server.clone());
        }
        let discovery = self.discovery.as_ref()?;
        let url = url::Url::parse(uri).ok()?;
        let host = match url.host()? {
            url::Host::Domain(name) => name.to_owned(),
            _ => return None,
        };
        let server = discovery.server(&host, url.port()?).ok()?;
        (server.uri == uri).then_some(server)
    }
}

/// The servers of `uris`, or the discovery of `domain`: exactly one of the two.
pub(super) fn servers(raw: &RawDirectory, error: &ErrorFn) -> Result<(Vec<Server>, Option<SrvDiscovery>), ConfigError> {
    match (&raw.uris, &raw.domain) {
        (Some(_), Some(_)) => Err(error(
            "directory.domain",
            "is set together with directory.uris; give one of them: uris (servers in order) or domain (servers \
             from DNS SRV records)"
                .into(),
        )),
        (None, None) => Err(error(
            "directory.uris",
            "is missing; give directory.uris (servers in order) or directory.domain (servers from DNS SRV records)"
                .into(),
        )),
        (Some(uris), None) => {
            if uris.is_empty() {
                return Err(error(
                    "directory.uris",
                    "names no server; give at least one ldap:// or ldaps:// URI".into(),
                ));
            }
            let servers = uris
                .iter()
                .map(|uri| parse_server(uri, raw.tls).map_err(|m| error("directory.uris", m)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((servers, None))
        }
        (None, Some(domain)) => {
            let domain = check_domain(domain).map_err(|m| error("directory.domain", m))?;
            let transport = match raw.tls {
                RawTls::Starttls => Transport::StartTls,
                RawTls::Ldaps => Transport::Ldaps,
                // One forged DNS answer would send every login, password in clear, to a
                // server that accepts any password.
                RawTls::DangerPlaintext => {
                    return Err(error(
                        "directory.domain",
                        "cannot be used with tls = \"danger-plaintext\": without TLS nothing checks that the \
                         servers DNS names are the directory's; list them in directory.uris"
                            .into(),
                    ));
                }
            };
            Ok((Vec::new(), Some(SrvDiscovery { domain, transport })))
        }
    }
}

fn parse_server(uri: &str, tls: RawTls) -> Result<Server, String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not a URI: {e}"))?;
    let (transport, default_port) = match (url.scheme(), tls) {
        ("ldaps", _) => (Transport::Ldaps, 636),
        ("ldap", RawTls::Starttls) => (Transport::StartTls, 389),
        ("ldap", RawTls::DangerPlaintext) => (Transport::DangerPlaintext, 389),
        ("ldap", RawTls::Ldaps) => {
            return Err(format!("{uri:?} is ldap:// but tls = \"ldaps\"; write ldaps:// or use tls = \"starttls\""));
        }
        (scheme, _) => return Err(format!("{uri:?}: scheme {scheme:?} is not ldap:// or ldaps://")),
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(format!("{uri:?} names no host")),
    };
    if !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!("{uri:?}: only scheme, host and port are allowed (the base DN goes in directory.base)"));
    }
    Ok(Server { uri: uri.to_owned(), host, port: url.port().unwrap_or(default_port), transport })
}

/// A DNS name (RFC 1035 2.3.1, with digits allowed first as RFC 1123 does): labels of letters,
/// digits and `-` (not at either end), at most 63 bytes each and 253 in all. One trailing dot
/// is dropped; the name is kept in lower case.
fn check_domain(text: &str) -> Result<String, String> {
    let domain = text.trim().strip_suffix('.').unwrap_or(text.trim()).to_ascii_lowercase();
    let example = "a DNS domain such as \"example.org\"";
    if domain.is_empty() || domain.len() > 253 {
        return Err(format!("{text:?} is not {example}"));
    }
    if domain.starts_with("_ldap") {
        return Err(format!("{text:?}: give the domain alone; the agent asks for _ldap._tcp.<domain> itself"));
    }
    for label in domain.split('.') {
        let allowed = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if label.is_empty() || label.len() > 63 || !allowed || label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{text:?} is not {example}: {label:?} is not a DNS label"));
        }
    }
    // An address is not a domain: a top-level label is never all digits (RFC 3696 2).
    if domain.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("{text:?} is an address, not {example}; put servers by address in directory.uris"));
    }
    Ok(domain)
}
