//! End-to-end tests: a real slapd (StartTLS, fixture from `lanyard_tests::fixture`), the real
//! `lanyardd`, and the system's `getent` and `id` loading `libnss_lanyard.so.2` in a private
//! mount namespace. Each test starts and stops its own servers.
//!
//! Needs root (mount namespaces) and a built workspace: `cargo build --workspace` first.
//!
//! | module | area |
//! | --- | --- |
//! | `harness` | the fixture slapd itself: TLS required, data loaded, stopped on drop |
//! | `nss` | lookups and enumeration through the module |
//! | `availability` | the agent stopped: prompt failures, `files` still answers |
//! | `hostile` | filter metacharacters, odd bytes, case and space variants, odd ids |
//! | `tls` | wrong CA, danger-plaintext, ldaps, several URIs |
//! | `config` | configurations lanyardd must refuse |

mod availability;
mod common;
mod config;
mod harness;
mod hostile;
mod nss;
mod tls;
