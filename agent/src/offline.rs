//! Offline password verifiers: after each successful online login the agent keeps an Argon2id
//! hash of the password (never the password), and while the directory is unreachable a login is
//! checked against it under three rules: an age limit, a failure limit and a lockout.
//!
//! Pure logic: no storage, no clock, no async. Times are wall-clock seconds since the Unix epoch
//! passed in as `now`, because verifiers outlive restarts. [`make`] and a [`check`] that gets as
//! far as the password each cost one Argon2id hash (tens of milliseconds, 19 MiB): call them from
//! `spawn_blocking`. [`check`] changes the verifier it is given; the caller persists it whenever
//! it differs from what was loaded, and runs one check per user at a time (load, check, persist),
//! or concurrent guesses would each see the same failure count.

use std::fmt;

use argon2::password_hash::Error as HashError;
use argon2::{ARGON2ID_IDENT, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use lanyard_proto::Secret;
use serde::{Deserialize, Serialize};

use crate::config::OfflineConfig;

/// Cost of new verifiers: OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane).
/// The agent's own numbers, not the crate's defaults, so a crate update never silently changes
/// what is stored. Raising them is safe: old verifiers keep verifying with the parameters in
/// their PHC string, and [`needs_rehash`] has them replaced at the next online login.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Stored parameters above these are refused instead of computed. Nothing but the agent writes
/// verifiers, but a corrupted cache file must not make one offline login allocate gigabytes or
/// run for hours on a `spawn_blocking` thread. The ceiling leaves room to raise the costs above
/// more than tenfold: at most 256 MiB, and a few seconds in release at the very worst.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;

/// What the agent keeps to check a password while offline.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)] // Debug by hand: never print the hash
pub struct Verifier {
    /// Argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`): salt and parameters
    /// travel with it.
    pub phc: String,
    /// Last successful ONLINE login (wall clock secs).
    pub last_online_login: u64,
    /// Wrong offline passwords since the last success or lockout.
    pub failures: u32,
    /// Offline attempts refused until then (wall clock secs), after `max_failures`.
    pub locked_until: Option<u64>,
}

/// The answer to one offline login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineCheck {
    Accepted,
    /// Wrong password, an empty one, or a verifier that cannot be used (logged).
    Rejected,
    /// The last online login is `max_age` or more ago; the password was not checked.
    Expired,
    /// Too many wrong passwords; nothing is checked before `until` (wall clock secs).
    LockedOut {
        until: u64,
    },
}

/// Why [`make`] made no verifier.
#[derive(Debug)]
pub enum OfflineError {
    /// The password is empty. Store nothing: an empty password never logs in (to LDAP it is an
    /// unauthenticated bind, RFC 4513 5.1.2), so there is nothing to remember.
    EmptyPassword,
    /// Argon2id could not hash: the system's random source failed (no salt) or memory ran out.
    /// Log it and remove the user's stored verifier: it may hold a previous password that must
    /// not keep working offline. The next online login tries again.
    Hash(HashError),
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineError::EmptyPassword => f.write_str("an empty password gets no offline verifier"),
            OfflineError::Hash(e) => write!(f, "cannot hash the password for offline use: {e}"),
        }
    }
}

impl std::error::Error for OfflineError {}

/// Makes a verifier of `password` (fresh random salt), as of an online login at `now`.
/// CPU-heavy: call it from `spawn_blocking`.
pub fn make(password: &Secret, now: u64) -> Result<Verifier, OfflineError> {
    if password.is_empty() {
        return Err(OfflineError::EmptyPassword);
    }
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| OfflineError::Hash(e.into()))?;
    // The password goes to Argon2 as the Secret's own bytes, never copied here; the Secret wipes
    // itself. Argon2's `zeroize` feature wipes its first and last hash blocks; the 19 MiB of
    // memory in between is derived one-way from the first and holds no password bytes. The
    // Blake2b input buffer that reads the password is wiped only with blake2's own `zeroize`
    // feature, which argon2's does not turn on: the agent's Cargo.toml has to ask for it.
    let hash: PasswordHash = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.expose())
        .map_err(OfflineError::Hash)?;
    Ok(Verifier { phc: hash.to_string(), last_online_login: now, failures: 0, locked_until: None })
}

/// Checks `password` against `verifier` at `now` under `rules`, updating its failure count and
/// lockout (the caller persists it). The rules, in the order they apply:
///
/// 1. A `last_online_login` in the future (the clock was set back since) becomes `now`.
///    Measuring age from the future would keep the verifier young until the clock catches up,
///    which after a jump back of a year would be a year plus `max_age`. Counted from `now`, it
///    expires `max_age` after the first offline attempt that sees it, and a later jump forward
///    only makes it older. An offline success never moves `last_online_login`: only the
///    directory can vouch for a password, so offline use cannot extend a verifier's life.
/// 2. `now >= last_online_login + max_age`: [`OfflineCheck::Expired`], and the password is not
///    looked at (no hash, no failure counted): nothing it could say would change the answer.
///    `max_age = 0` therefore turns offline login off. Expired comes before the lockout because
///    it tells the user what helps (reconnect), and waiting would not.
/// 3. A lockout longer than `lockout` from `now` (set before the clock was set back) is cut to
///    `now + lockout`: a lock never outlasts its configured length because of the clock.
///    Then, while `now < locked_until`: [`OfflineCheck::LockedOut`], without hashing and
///    without counting, so an attacker can neither guess nor burn CPU, and a wrong password
///    while locked does not extend the lock. A lock that has run out is cleared.
/// 4. An empty password is [`OfflineCheck::Rejected`] without hashing or counting: it never
///    matches (even a verifier of "" is refused), and counting it would lock out users who
///    press Enter on an empty prompt.
/// 5. A PHC string that does not parse, is not Argon2id v19, or asks for costs above the
///    ceiling is Rejected with an error log line, and counts nothing: the fault is the cache's,
///    not the user's, and the next online login replaces it.
/// 6. Right: failures = 0, no lock. Wrong: failures + 1; on reaching `max_failures` (at least
///    1), locked until `now + lockout` and failures back to 0, so after the wait the user has
///    `max_failures` new tries, the same rhythm every time. The attempt that sets the lock
///    returns `Rejected` (its password was checked and wrong); the next ones `LockedOut`.
pub fn check(verifier: &mut Verifier, password: &Secret, now: u64, rules: &OfflineConfig) -> OfflineCheck {
    if verifier.last_online_login > now {
        verifier.last_online_login = now;
    }
    if now >= verifier.last_online_login.saturating_add(rules.max_age.as_secs()) {
        return OfflineCheck::Expired;
    }
    if let Some(until) = verifier.locked_until {
        let until = until.min(now.saturating_add(rules.lockout.as_secs()));
        if now < until {
            verifier.locked_until = Some(until);
            return OfflineCheck::LockedOut { until };
        }
        verifier.locked_until = None;
    }
    if password.is_empty() {
        return OfflineCheck::Rejected;
    }
    let hash = match parse(&verifier.phc) {
        Ok((hash, _)) => hash,
        Err(why) => {
            tracing::error!(
                "offline verifier unusable ({why}); offline logins refused until an online login replaces it"
            );
            return OfflineCheck::Rejected;
        }
    };
    // The blanket verifier takes algorithm, version and costs from the PHC string, not from this
    // Argon2 value: verifiers made with older (lower) costs keep working.
    match Argon2::default().verify_password(password.expose(), &hash) {
        Ok(()) => {
            verifier.failures = 0;
            verifier.locked_until = None;
            OfflineCheck::Accepted
        }
        Err(HashError::PasswordInvalid) => {
            verifier.failures = verifier.failures.saturating_add(1);
            if verifier.failures >= rules.max_failures.max(1) {
                verifier.locked_until = Some(now.saturating_add(rules.lockout.as_secs()));
                verifier.failures = 0;
            }
            OfflineCheck::Rejected
        }
        Err(e) => {
            // Out of memory, or parameters Argon2 refuses: not the user's fault, nothing counted.
            tracing::error!("offline verifier could not be checked ({e}); offline login refused");
            OfflineCheck::Rejected
        }
    }
}

/// True when `verifier` costs less than a new one would (or cannot be used at all): the service
/// replaces it with [`make`] at the next online login.
pub fn needs_rehash(verifier: &Verifier) -> bool {
    match parse(&verifier.phc) {
        Ok((_, params)) => params.m_cost() < M_COST_KIB || params.t_cost() < T_COST || params.p_cost() < P_COST,
        Err(_) => true,
    }
}

/// Why a stored PHC string is not used. Its text never includes the salt or the hash.
enum Unusable {
    Syntax(HashError),
    Algorithm,
    Version,
    NoSaltOrHash,
    Params(HashError),
    TooCostly { m: u32, t: u32, p: u32 },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Syntax(e) => write!(f, "not a PHC string: {e}"),
            Unusable::Algorithm => f.write_str("not argon2id"),
            Unusable::Version => f.write_str("not Argon2 version 19"),
            Unusable::NoSaltOrHash => f.write_str("no salt or no hash"),
            Unusable::Params(e) => write!(f, "bad parameters: {e}"),
            Unusable::TooCostly { m, t, p } => {
                write!(f, "m={m},t={t},p={p} exceeds the ceiling m={MAX_M_COST_KIB},t={MAX_T_COST},p={MAX_P_COST}")
            }
        }
    }
}

/// Parses `phc` and checks that it is something this module made: Argon2id, version 19, with
/// a salt and a hash, and costs under the ceiling. Argon2's own verifier would also accept
/// argon2i or argon2d strings; a verifier is never allowed to pick a weaker algorithm.
fn parse(phc: &str) -> Result<(PasswordHash, Params), Unusable> {
    let hash = PasswordHash::new(phc).map_err(|e| Unusable::Syntax(e.into()))?;
    if hash.algorithm != ARGON2ID_IDENT {
        return Err(Unusable::Algorithm);
    }
    if hash.version != Some(Version::V0x13.into()) {
        return Err(Unusable::Version);
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Unusable::NoSaltOrHash);
    }
    let params = Params::try_from(&hash).map_err(Unusable::Params)?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_M_COST_KIB || t > MAX_T_COST || p > MAX_P_COST {
        return Err(Unusable::TooCostly { m, t, p });
    }
    Ok((hash, params))
}

impl fmt::Debug for Verifier {
    /// Algorithm and costs from the PHC string, picked out by name: never its salt or hash,
    /// and nothing of a string that does not parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Verifier");
        match PasswordHash::new(&self.phc) {
            Ok(hash) => {
                out.field("algorithm", &hash.algorithm.as_str())
                    .field("version", &hash.version)
                    .field("m", &hash.params.get_decimal("m"))
                    .field("t", &hash.params.get_decimal("t"))
                    .field("p", &hash.params.get_decimal("p"));
            }
            Err(_) => {
                out.field("phc", &format_args!("<unparseable, {} bytes>", self.phc.len()));
            }
        }
        out.field("last_online_login", &self.last_online_login)
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .finish()
    }
}

#[cfg(test)]
mod tests;
