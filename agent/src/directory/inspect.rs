//! Looking at one directory server step by step, for `lanyardctl status` and `doctor`: name
//! resolution, TCP, StartTLS, the TLS handshake (with the agent's own [`super::tls`] config, so
//! the verdict is the agent's), the service bind, and whether the server would take a simple
//! bind in clear. Each step reports its own failure, so the doctor can say which one broke.
//!
//! Nothing here is on the agent's request path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, StdStream};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::pool::ldap3_result_text;
use crate::config::{Server, ServiceAccount, Transport};

/// The StartTLS extended request (RFC 4511 4.14.1), message id 1, in BER:
///
/// ```text
/// 30 1d                      LDAPMessage SEQUENCE, 29 bytes
///    02 01 01                messageID 1
///    77 18                   [APPLICATION 23] ExtendedRequest, 24 bytes
///       80 16 "1.3.6.1.4.1.1466.20037"   [0] requestName, 22 bytes
/// ```
pub const STARTTLS_REQUEST: [u8; 31] = *b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

/// The largest StartTLS response accepted (a result code and two short strings).
const MAX_RESPONSE: usize = 16 * 1024;

/// What a successful TLS handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: String,
    pub cipher_suite: String,
    /// The leaf certificate's notAfter (Unix seconds).
    pub not_after: Option<i64>,
    /// DNS names and IP addresses of its subjectAltName.
    pub names: Vec<String>,
}

impl TlsReport {
    /// Whole days from `now` (Unix seconds) until the certificate expires; negative once expired.
    pub fn days_left(&self, now: i64) -> Option<i64> {
        self.not_after.map(|t| (t - now).div_euclid(86_400))
    }
}

/// The host's addresses (DNS or a literal address).
pub async fn resolve(server: &Server, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let host = server.host.trim_start_matches('[').trim_end_matches(']');
    let lookup = tokio::net::lookup_host((host, server.port));
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(format!("resolving {host:?}: no answer within {timeout:?}")),
        Ok(Err(e)) => Err(format!("resolving {host:?}: {e}")),
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() { Err(format!("{host:?} has no address")) } else { Ok(addresses) }
        }
    }
}

/// A TCP connection to the first address that accepts one, with TCP_NODELAY (NOTES.md).
pub async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, String> {
    let mut failures = Vec::new();
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => {
                tcp.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
                return Ok(tcp);
            }
            Ok(Err(e)) => failures.push(format!("{address}: {e}")),
            Err(_) => failures.push(format!("{address}: no answer within {timeout:?}")),
        }
    }
    Err(failures.join("; "))
}

/// Sends the StartTLS request and reads the server's answer: `Ok` when it agreed
/// (resultCode 0), otherwise the result code and its text.
pub async fn starttls(tcp: &mut TcpStream, timeout: Duration) -> Result<(), String> {
    let exchange = async {
        tcp.write_all(&STARTTLS_REQUEST).await.map_err(|e| format!("sending StartTLS: {e}"))?;
        read_message(tcp).await
    };
    let message = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Err(format!("no answer to StartTLS within {timeout:?}")),
        Ok(result) => result?,
    };
    match extended_result(&message) {
        Some((0, _)) => Ok(()),
        Some((rc, text)) => Err(format!("StartTLS refused: {}", ldap3_result_text(rc, &text))),
        None => Err("the answer to StartTLS is not an LDAP ExtendedResponse".into()),
    }
}

/// The TLS handshake over `tcp`, verified exactly as the agent verifies it.
pub async fn handshake(
    tcp: TcpStream,
    server: &Server,
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<TlsReport, String> {
    let host = server.host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let name = ServerName::try_from(host)
        .map_err(|e| format!("{:?} cannot be checked against a certificate: {e}", server.host))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => return Err(format!("TLS handshake: no answer within {timeout:?}")),
        Ok(Err(e)) => {
            return Err(match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => format!("TLS handshake failed: {tls}"),
                None => format!("TLS handshake failed: {e}"),
            });
        }
        Ok(Ok(stream)) => stream,
    };
    let (_, session) = stream.get_ref();
    let mut report = TlsReport {
        version: session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
        cipher_suite: session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default(),
        not_after: None,
        names: Vec::new(),
    };
    if let Some(leaf) = session.peer_certificates().and_then(|chain| chain.first()) {
        certificate_details(leaf, &mut report);
    }
    Ok(report)
}

fn certificate_details(der: &[u8], report: &mut TlsReport) {
    use x509_parser::extensions::GeneralName;
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else { return };
    report.not_after = Some(certificate.validity().not_after.timestamp());
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => report.names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        report.names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        report.names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
}

/// Resolve, connect, StartTLS (for `ldap://`), handshake: the TLS report of one server, or the
/// first failure. `None` for a `danger-plaintext` server (no TLS to report).
pub async fn probe_tls(
    server: &Server,
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Option<TlsReport>, String> {
    if server.transport == Transport::DangerPlaintext {
        return Ok(None);
    }
    let addresses = resolve(server, timeout).await?;
    let mut tcp = connect(&addresses, timeout).await?;
    if server.transport == Transport::StartTls {
        starttls(&mut tcp, timeout).await?;
    }
    handshake(tcp, server, tls, timeout).await.map(Some)
}

/// A connection set up as the agent's pool sets one up (StartTLS, LDAPS or plaintext as
/// configured) and bound as the service account (anonymous without one).
pub async fn service_session(
    server: &Server,
    account: Option<&ServiceAccount>,
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Ldap, String> {
    let addresses = resolve(server, timeout).await?;
    let tcp = connect(&addresses, timeout).await?;
    let mut ldap = ldap3_session(tcp, server, Some(tls), timeout).await?;
    if let Some(account) = account {
        let password = String::from_utf8_lossy(account.password.expose()).into_owned();
        let password = zeroize::Zeroizing::new(password);
        let result = tokio::time::timeout(timeout, ldap.simple_bind(&account.dn, &password))
            .await
            .map_err(|_| format!("no answer to the bind within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        if result.rc != 0 {
            return Err(format!("bind as {} refused: {}", account.dn, ldap3_result_text(result.rc, &result.text)));
        }
    }
    Ok(ldap)
}

/// The password sent by [`plaintext_bind_result`]: never a real one.
pub const DUMMY_PASSWORD: &str = "lanyard-doctor-deliberately-wrong-password";

/// Sends a simple bind as `dn` with [`DUMMY_PASSWORD`] over plain `ldap://` (no StartTLS) and
/// returns the server's result code: 13 (confidentialityRequired) means it refuses plaintext
/// binds; 49 (invalidCredentials) means it evaluated a password sent in clear.
pub async fn plaintext_bind_result(server: &Server, dn: &str, timeout: Duration) -> Result<u32, String> {
    let addresses = resolve(server, timeout).await?;
    let tcp = connect(&addresses, timeout).await?;
    let plain = Server { transport: Transport::DangerPlaintext, ..server.clone() };
    let mut ldap = ldap3_session(tcp, &plain, None, timeout).await?;
    let result = tokio::time::timeout(timeout, ldap.simple_bind(dn, DUMMY_PASSWORD))
        .await
        .map_err(|_| format!("no answer to the bind within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let _ = ldap.unbind().await;
    Ok(result.rc)
}

async fn ldap3_session(
    tcp: TcpStream,
    server: &Server,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<Ldap, String> {
    let tcp = tcp.into_std().map_err(|e| format!("socket: {e}"))?;
    let mut settings = LdapConnSettings::new()
        .set_std_stream(StdStream::Tcp(tcp))
        .set_conn_timeout(timeout)
        .set_starttls(server.transport == Transport::StartTls);
    if let Some(tls) = tls {
        settings = settings.set_config(tls);
    }
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &server.uri).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    Ok(ldap)
}

/// Reads one BER element (an LDAPMessage) of at most [`MAX_RESPONSE`] bytes.
async fn read_message(tcp: &mut TcpStream) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("reading the answer to StartTLS: {e}");
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.map_err(io)?;
    let mut message = head.to_vec();
    let length = if head[1] & 0x80 == 0 {
        usize::from(head[1])
    } else {
        let count = usize::from(head[1] & 0x7f);
        if count == 0 || count > 4 {
            return Err("the answer to StartTLS is not BER".into());
        }
        let mut bytes = vec![0u8; count];
        tcp.read_exact(&mut bytes).await.map_err(io)?;
        message.extend_from_slice(&bytes);
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if length > MAX_RESPONSE {
        return Err(format!("the answer to StartTLS is {length} bytes long"));
    }
    let start = message.len();
    message.resize(start + length, 0);
    tcp.read_exact(&mut message[start..]).await.map_err(io)?;
    Ok(message)
}

/// One BER element at the start of `input`: (tag, contents, the rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first & 0x80 == 0 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)), rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

/// The resultCode and diagnosticMessage of an ExtendedResponse ([APPLICATION 24]).
fn extended_result(message: &[u8]) -> Option<(u32, String)> {
    let (0x30, body, _) = tlv(message)? else { return None };
    let (0x02, _id, body) = tlv(body)? else { return None };
    let (0x78, response, _) = tlv(body)? else { return None };
    let (0x0a, code, rest) = tlv(response)? else { return None };
    let rc = code.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b));
    let text = tlv(rest)
        .and_then(|(_, _matched, rest)| tlv(rest))
        .map(|(_, text, _)| String::from_utf8_lossy(text).into_owned())
        .unwrap_or_default();
    Some((rc, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starttls_request_is_well_formed_ber() {
        let (tag, body, rest) = tlv(&STARTTLS_REQUEST).unwrap();
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (tag, id, body) = tlv(body).unwrap();
        assert_eq!((tag, id), (0x02, &[1u8][..]));
        let (tag, request, _) = tlv(body).unwrap();
        let (name_tag, oid, _) = tlv(request).unwrap();
        assert_eq!((tag, name_tag, oid), (0x77, 0x80, &b"1.3.6.1.4.1.1466.20037"[..]));
    }

    #[test]
    fn extended_responses_give_their_result_code_and_text() {
        // slapd without TLS: unavailable (52), "Could not initialize TLS".
        let text = b"Could not initialize TLS";
        let mut response = vec![0x0a, 0x01, 52, 0x04, 0x00, 0x04, text.len() as u8];
        response.extend_from_slice(text);
        let mut op = vec![0x78, response.len() as u8];
        op.extend_from_slice(&response);
        let mut message = vec![0x30, (op.len() + 3) as u8, 0x02, 0x01, 0x01];
        message.extend_from_slice(&op);
        assert_eq!(extended_result(&message), Some((52, "Could not initialize TLS".into())));
        assert_eq!(extended_result(&[0x30, 0x03, 0x0a, 0x01, 0x00]), None);
        assert_eq!(extended_result(&[0x30, 0x7f]), None);
    }

    #[test]
    fn days_left_rounds_down_and_goes_negative_after_expiry() {
        let report = TlsReport {
            version: String::new(),
            cipher_suite: String::new(),
            not_after: Some(86_400 * 10),
            names: vec![],
        };
        assert_eq!(report.days_left(0), Some(10));
        assert_eq!(report.days_left(1), Some(9));
        assert_eq!(report.days_left(86_400 * 11), Some(-1));
    }
}
