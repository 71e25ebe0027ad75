//! `pam_lanyard.so`: logins through `lanyardd`.
//!
//! The module runs inside sshd, login, su, passwd and screen lockers, so it does as little as
//! possible: read the PAM items, ask the user through the application's conversation, send one
//! request to the agent over its socket (with the proto client's deadlines), and turn the answer
//! into a PAM return code. No threads, no global state, no panic crosses `extern "C"`, and
//! credentials only ever travel as [`lanyard_proto::Secret`].
//!
//! - [`ffi`]: the six `pam_sm_*` symbols libpam looks up, and every `unsafe` of the crate: the
//!   PAM handle behind the [`handle::Pam`] trait, the conversation (responses wiped before
//!   `free`), `syslog`. Each entry point is a shim: catch panics, parse the arguments, run one
//!   phase below, map its result through [`status`].
//! - [`options`]: the module arguments (`use_first_pass`, `minimum_uid=N`, `socket=PATH`, ...).
//! - [`handle`]: the safe trait a phase sees instead of the raw handle, and what every phase
//!   starts with: the checked user name, the request context, the agent, the log.
//! - [`auth`], [`account`], [`password`], [`session`]: one PAM phase each.
//! - [`home`]: creating a home directory from a skeleton, for the session phase.
//! - [`status`]: the crate's error type and one function per phase that decides the PAM code.
//!
//! Tests: each phase runs against a scripted fake handle (`fake_pam.rs`) and the proto crate's
//! fake agent on a scratch socket (`lanyard_proto::testing`, with this crate's sample directory
//! in `fake_agent.rs`); `tests/libpam.rs` loads the built cdylib through the system's libpam
//! (`pam_start_confdir`, a scratch service file naming it by absolute path).
//!
//! Arguments (module lines in `/etc/pam.d`):
//! `use_first_pass`, `try_first_pass`, `use_authtok`, `ignore_unknown_user`,
//! `ignore_authinfo_unavail`, `minimum_uid=N`, `debug`, `socket=PATH`. Anything else is logged
//! and ignored.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Every unsafe lives in ffi.rs, which alone allows it.
#![deny(unsafe_code)]

pub mod account;
pub mod auth;
pub mod ffi;
pub mod handle;
pub mod home;
pub mod options;
pub mod password;
pub mod session;
pub mod status;

#[cfg(test)]
mod fake_agent;
#[cfg(test)]
mod fake_pam;
