//! End-to-end tests: a real slapd (StartTLS, ppolicy, fixture from `lanyard_tests::fixture`),
//! the real `lanyardd`, the system's `getent` and `id` loading `libnss_lanyard.so.2`, and
//! pamtester and sshd loading `pam_lanyard.so`, in private mount namespaces. Each test starts
//! and stops its own servers.
//!
//! Needs root (mount namespaces) and a built workspace: `cargo build --workspace` first.
//!
//! | module | area |
//! | --- | --- |
//! | `harness` | the fixture slapd and the agent runner themselves: TLS required (and the plaintext-only slapd), data loaded, stopped on drop, outages, restarts |
//! | `big_groups` | a 1,000-member rfc2307bis group whose DNs each need a lookup is resolved while another client's lookup is answered |
//! | `directories` | the same checks (users, groups, nested groups, `id`, initgroups, logins, account states, password change, offline login) against each directory layout: OpenLDAP with rfc2307 and rfc2307bis, 389 Directory Server |
//! | `directory_policy` | the fixture's password policy and account states, with ldap-utils |
//! | `ds389` | the 389 Directory Server harness: rfc2307bis data with nested groups and memberOf, TLS required for binds, Password Modify, restarts |
//! | `samba_ad` | the Samba AD DC harness: a provisioned domain in its own namespaces, RFC 2307 users and nested groups, range retrieval, TLS required for binds, AD account states, a `unicodePwd` change, its DNS, gone after drop |
//! | `docs` | the man pages render with `man -l` and groff without warnings; generated pages and completions match `lanyardctl generate` |
//! | `pam_harness` | the pamtester and sshd runners, with Linux-PAM's own modules |
//! | `nss` | lookups and enumeration through the module |
//! | `availability` | the agent stopped: prompt failures, `files` still answers |
//! | `nss_status` | the `nss_status` itself (via `lanyard-nss-probe`): SUCCESS, NOTFOUND and UNAVAIL kept apart |
//! | `hostile` | filter metacharacters, odd bytes, case and space variants, odd ids; the same and broken frames sent straight to the agent's socket |
//! | `tls` | wrong CA, danger-plaintext, ldaps, several URIs |
//! | `config` | configurations lanyardd must refuse |
//! | `pam` | pamtester through `pam_lanyard.so`: auth, account, access, chauthtok, session, outages |
//! | `ssh` | a real sshd on loopback logging alice in with her directory password |
//! | `capture` | a recording proxy to slapd: no password ever crosses the wire in clear |
//! | `faults` | slapd killed mid-burst, the agent killed under waiting callers, a full cache disk, a slapd size limit |
//! | `abuse` | a thousand silent connections from root and a one-uid request flood: bystanders answered, memory bounded |
//! | `authz` | every request sent raw as a non-root uid and as root: others' logins, cache clears and invalidations refused, no secret or verifier in any answer; the cache and bind password closed to other users, no secret in the snapshot |
//! | `secrets` | debug logs and a core dump of the agent after logins hold no test password |
//! | `discovery` | servers from DNS SRV records (`directory.domain`, dnsmasq in private namespaces): priority order, failover and back, a changed record set, no records at all |
//! | `failover` | a provider and a syncrepl consumer: the provider killed mid-burst or hung, and back to it once it returns |
//! | `clock` | the wall clock jumping forward and back: memory TTLs, disk-cache ages, offline windows and lockouts use the right clock |
//! | `offline` | slapd stopped or hung: lookups and logins from the cache, back online, restarts, `kill -9`, the cache file |
//! | `snapshot` | the NSS fast path: answers from the mapped snapshot with the agent killed, invalidations seen at once, damaged files sent to the socket, readers in threads and forked children while it is replaced |

mod abuse;
mod authz;
mod availability;
mod big_groups;
mod capture;
mod clock;
mod common;
mod config;
mod ctl;
mod directories;
mod directory_policy;
mod discovery;
mod docs;
mod ds389;
mod failover;
mod faults;
mod harness;
mod hostile;
mod metrics;
mod nss;
mod nss_status;
mod offline;
mod package;
mod pam;
mod pam_harness;
mod samba_ad;
mod secrets;
mod snapshot;
mod ssh;
mod tls;
