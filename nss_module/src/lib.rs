//! `libnss_lanyard.so.2`: the glibc NSS module for the `lanyard` source in nsswitch.conf.
//!
//! It runs inside every program that looks up a user or group (sshd, login, sudo, `ls -l`), so
//! it does as little as possible: check the name, answer from the agent's snapshot if it holds
//! a fresh entry, else ask `lanyardd` over its socket with short deadlines, copy the answer into
//! the caller's buffer. No threads, no global runtime, no panic
//! crosses `extern "C"`, and "not found" never turns into "unavailable" or back.
//!
//! - [`ffi`]: the symbols glibc looks up (`_nss_lanyard_getpwnam_r`, ...) and every `unsafe` of
//!   the crate. Each is a shim: catch panics, turn pointers into safe types, call one function
//!   below, map the result through [`status`].
//! - [`lookup`]: by name, by id, and initgroups: validate, the snapshot or one request, one
//!   answer.
//! - `snapshot`: the agent's snapshot file, mapped once per process and remapped when the agent
//!   replaces it (the mapping itself is `ffi::MappedFile`).
//! - `retry`: the answer that did not fit, kept for glibc's immediate retry with a larger buffer.
//! - `stuck`: after a reply timed out, short deadlines for a while, so a stuck agent costs one
//!   long wait per process, not one per lookup.
//! - [`enumerate`]: `set*ent` / `get*ent_r` / `end*ent` over the agent's stream of pages.
//! - [`buffer`]: packing strings and the `gr_mem` array into the caller's buffer, as offsets.
//! - [`status`]: the crate's error type and the one mapping to `nss_status` and errno.
//!
//! The agent sets [`lanyard_proto::BYPASS_ENV`] in its own environment; this module then
//! answers UNAVAIL at once, so the agent never asks itself through nsswitch.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Every unsafe lives in ffi.rs, which alone allows it.
#![deny(unsafe_code)]

pub mod buffer;
pub mod enumerate;
pub mod ffi;
pub mod lookup;
mod retry;
mod snapshot;
pub mod status;
mod stuck;

#[cfg(test)]
mod fake_agent;
