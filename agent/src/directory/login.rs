//! Logins against the directory: binds as end users on the binder pool (never on the service
//! account's connections), the account state the account phase reads, and password changes
//! with the Password Modify extended operation (RFC 3062).
//!
//! Passwords reach ldap3 only as `&str` borrowed from a [`Secret`]; ldap3 copies them into its
//! own BER buffers, which it does not wipe: lanyardd's global allocator wipes them when freed.

use std::future::Future;

use lanyard_proto::{Passwd, Secret};
use ldap3::exop::PasswordModify;
use std::collections::HashSet;

use ldap3::{Ldap, LdapError, Mod, SearchEntry};
use tracing::warn;

use super::ad;
use super::ad_search::{self, AdAccount};
use super::facts::PasswordProtocol;
use super::ldap::{AfterUse, LdapDirectory};
use super::pool::{bind_result, ldap3_result_text};
use super::{AccountState, DirectoryError, PasswordChange, PasswordCheck, mapping};
use crate::config::Schema;
use crate::metrics::{BindKind, BindResult};

/// Read for the account phase beside the `passwd` attributes.
/// `pwdAccountLockedTime` is the password policy's lock (OpenLDAP ppolicy, draft-behera);
/// `nsAccountLock` is 389 Directory Server's (operational: returned only when asked by name).
const ACCOUNT_ATTRIBUTES: [&str; 6] =
    ["shadowExpire", "shadowLastChange", "shadowMax", "shadowWarning", "pwdAccountLockedTime", "nsAccountLock"];

const INVALID_CREDENTIALS: u32 = 49;
const UNWILLING_TO_PERFORM: u32 = 53;

/// What [`LdapDirectory::on_own_connection`] does when the connection is lost before an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnLostConnection {
    /// Once more, on a new connection (a bind: nothing happened on the server).
    TryAnother,
    /// Report it (a password change: it may have been applied).
    Fail,
}

impl LdapDirectory {
    /// The user's entry with the attributes logins need, found as the service account.
    async fn login_entry(&self, user: &str) -> Result<Option<(SearchEntry, Passwd)>, DirectoryError> {
        let mut attrs = mapping::user_attributes(&self.users);
        let extra: &[&str] =
            if self.schema == Schema::Ad { &ad_search::ACCOUNT_ATTRIBUTES } else { &ACCOUNT_ATTRIBUTES };
        attrs.extend(extra.iter().map(|a| (*a).to_owned()));
        self.find_user(user, &attrs).await
    }

    /// Runs `op` on a binder connection nobody else is using, within one `directory.timeout`.
    /// The connection carried a password, so it is retired afterwards (`AfterUse::Retire`) and
    /// a fresh one is connected in the background for the next login.
    ///
    /// A connection lost before any answer (the server died mid-login) is tried once more on a
    /// new connection, which goes to the next server if this one is gone, when `lost` says so:
    /// a bind that never reached an answer changed nothing worth protecting, but a password
    /// change may have been applied. Never after a timeout: a bind the server is still working
    /// on may count as a failure there.
    async fn on_own_connection<T, Fut>(
        &self,
        what: &str,
        lost: OnLostConnection,
        op: impl Fn(Ldap) -> Fut,
    ) -> Result<T, DirectoryError>
    where
        Fut: Future<Output = Result<T, LdapError>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let attempts = if lost == OnLostConnection::TryAnother { 2 } else { 1 };
        let mut last = DirectoryError::Timeout;
        for _ in 0..attempts {
            // Connecting and the operation share the budget. Dropped without `keep`, the lease
            // discards its connection.
            let attempt = async {
                let lease = self.binder.lease_exclusive().await?;
                let result = op(lease.ldap.clone()).await;
                Ok::<_, DirectoryError>((lease.server.clone(), result))
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Err(unreachable)) => return Err(unreachable),
                Ok(Ok((_, Ok(value)))) => {
                    self.binder.refill_in_background();
                    return Ok(value);
                }
                Ok(Ok((server, Err(e)))) => {
                    warn!(%server, "{what} failed: {e}");
                    last = DirectoryError::Unreachable(format!("{server}: {what}: {e}"));
                }
                Err(_) => {
                    warn!("{what}: no answer within {:?} (directory.timeout)", self.timeout);
                    return Err(DirectoryError::Timeout);
                }
            }
        }
        Err(last)
    }

    pub(super) async fn check_password_as_user(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<PasswordCheck, DirectoryError> {
        let Some((entry, _)) = self.login_entry(user).await? else { return Ok(PasswordCheck::NoSuchUser) };
        // A password that is not UTF-8 cannot be sent through ldap3; an empty one would make an
        // unauthenticated bind that servers may answer with success (RFC 4513 5.1.2).
        let Some(password) = std::str::from_utf8(password.expose()).ok().filter(|p| !p.is_empty()) else {
            return Ok(PasswordCheck::Rejected);
        };
        let dn = entry.dn.as_str();
        let result = self
            .on_own_connection("bind", OnLostConnection::TryAnother, |mut ldap| async move {
                ldap.simple_bind(dn, password).await
            })
            .await;
        self.metrics.bind(BindKind::User, result.as_ref().map_or(BindResult::Error, |r| bind_result(r.rc)));
        let result = result?;
        match result.rc {
            0 => Ok(PasswordCheck::Accepted),
            // AD says so only after checking the password: it is right, and must change.
            INVALID_CREDENTIALS if self.schema == Schema::Ad && ad::password_must_change(&result.text) => {
                Ok(PasswordCheck::MustChange)
            }
            INVALID_CREDENTIALS => Ok(PasswordCheck::Rejected),
            // 389 DS refuses an inactivated (`nsAccountLock`) account's bind this way: a refusal
            // of this login, not an outage.
            UNWILLING_TO_PERFORM => {
                warn!("bind as {dn} refused: {}", ldap3_result_text(result.rc, &result.text));
                Ok(PasswordCheck::Rejected)
            }
            rc => Err(DirectoryError::Server(format!("bind as {dn}: {}", ldap3_result_text(rc, &result.text)))),
        }
    }

    pub(super) async fn account_state(&self, user: &str) -> Result<Option<AccountState>, DirectoryError> {
        let Some((entry, passwd)) = self.login_entry(user).await? else { return Ok(None) };
        let number = |attr: &str| mapping::first_value(&entry.attrs, attr).and_then(|v| v.trim().parse::<i64>().ok());
        let ad = match self.schema {
            Schema::Ad => ad_search::account(&entry, self.facts().await?.max_password_age),
            Schema::Rfc2307 | Schema::Rfc2307bis => AdAccount::default(),
        };
        Ok(Some(AccountState {
            user: passwd,
            shadow_expire: number("shadowExpire"),
            shadow_last_change: number("shadowLastChange"),
            shadow_max: number("shadowMax"),
            shadow_warning: number("shadowWarning"),
            locked: ad.locked
                || mapping::first_value(&entry.attrs, "pwdAccountLockedTime").is_some()
                || mapping::first_value(&entry.attrs, "nsAccountLock")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            disabled: ad.disabled,
            expires_at: ad.expires_at,
            password_expires_at: ad.password_expires_at,
        }))
    }

    /// Whether the entry `user` names (see `find_user`) matches `extra`: that entry, asked
    /// again at its own DN, never any other entry that happens to match the name.
    pub(super) async fn user_matches_filter(&self, user: &str, extra: &str) -> Result<bool, DirectoryError> {
        let Some((entry, _)) = self.find_user(user, &mapping::user_attributes(&self.users)).await? else {
            return Ok(false);
        };
        let filter = format!("(&{}{extra})", self.users.filter);
        // "1.1": no attributes, only whether the entry matches (RFC 4511 4.5.1.8).
        Ok(self.entry_at(&entry.dn, &filter, &["1.1".to_owned()]).await?.is_some())
    }

    pub(super) async fn change_password_of(
        &self,
        user: &str,
        old: Option<&Secret>,
        new: &Secret,
    ) -> Result<PasswordChange, DirectoryError> {
        let Some((entry, _)) = self.login_entry(user).await? else { return Ok(PasswordChange::NoSuchUser) };
        let Ok(new) = std::str::from_utf8(new.expose()) else {
            return Ok(PasswordChange::Rejected("the new password is not valid UTF-8".into()));
        };
        let old = match old.map(|old| std::str::from_utf8(old.expose()).ok().filter(|p| !p.is_empty())) {
            Some(None) => return Ok(PasswordChange::WrongOldPassword),
            Some(Some(old)) => Some(old),
            None => None,
        };
        let dn = entry.dn.as_str();
        // What the server takes, from its root DSE: never a guess in the config.
        let (rc, text) = match self.facts().await?.password_protocol {
            PasswordProtocol::PasswordModify => self.password_modify(dn, old, new).await?,
            PasswordProtocol::UnicodePwd => self.unicode_pwd_modify(dn, old, new).await?,
        };
        match rc {
            0 => Ok(PasswordChange::Changed),
            INVALID_CREDENTIALS => Ok(PasswordChange::WrongOldPassword),
            // constraintViolation (19), unwillingToPerform (53): the policy said no; say why.
            19 | 53 => Ok(PasswordChange::Rejected(if text.is_empty() {
                "the directory refused the new password".into()
            } else {
                text
            })),
            rc => Err(DirectoryError::Server(format!("password change for {dn}: {}", ldap3_result_text(rc, &text)))),
        }
    }

    /// RFC 3062 Password Modify: as the user after a bind with `old`, or without `old` as the
    /// service account. The result code and text.
    async fn password_modify(&self, dn: &str, old: Option<&str>, new: &str) -> Result<(u32, String), DirectoryError> {
        let Some(old) = old else {
            return self
                .with_retry_then("password reset", AfterUse::Retire, |mut ldap| async move {
                    let modify = PasswordModify { user_id: Some(dn), old_pass: None, new_pass: Some(new) };
                    ldap.extended(modify).await.map(|reply| (reply.1.rc, reply.1.text))
                })
                .await;
        };
        let metrics = &self.metrics;
        self.on_own_connection("password change", OnLostConnection::Fail, |mut ldap| async move {
            let bind = ldap.simple_bind(dn, old).await?;
            metrics.bind(BindKind::User, bind_result(bind.rc));
            if bind.rc != 0 {
                return Ok((bind.rc, bind.text));
            }
            let modify = PasswordModify { user_id: None, old_pass: Some(old), new_pass: Some(new) };
            // The reply carries no value when we chose the new password: read only the
            // result (ldap3's ExopResult::parse would panic, NOTES.md).
            ldap.extended(modify).await.map(|reply| (reply.1.rc, reply.1.text))
        })
        .await
    }

    /// Active Directory: a modify of `unicodePwd` (MS-ADTS 3.1.1.3.1.5.1), which AD takes only
    /// over an encrypted connection. As the user after a bind with `old`: delete the old value
    /// and add the new one in one modify (a change, which the password policy's history and
    /// age rules apply to). Without `old`, as the service account: replace it (a reset, which
    /// needs that right).
    async fn unicode_pwd_modify(
        &self,
        dn: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(u32, String), DirectoryError> {
        let attribute = || b"unicodePwd".to_vec();
        let Some(old) = old else {
            return self
                .with_retry_then("password reset", AfterUse::Retire, |mut ldap| async move {
                    let replace = Mod::Replace(attribute(), HashSet::from([ad::unicode_pwd(new).to_vec()]));
                    ldap.modify(dn, vec![replace]).await.map(|result| (result.rc, result.text))
                })
                .await;
        };
        let change = || {
            vec![
                Mod::Delete(attribute(), HashSet::from([ad::unicode_pwd(old).to_vec()])),
                Mod::Add(attribute(), HashSet::from([ad::unicode_pwd(new).to_vec()])),
            ]
        };
        let metrics = &self.metrics;
        let (rc, text) = self
            .on_own_connection("password change", OnLostConnection::Fail, |mut ldap| async move {
                let bind = ldap.simple_bind(dn, old).await?;
                metrics.bind(BindKind::User, bind_result(bind.rc));
                if bind.rc != 0 {
                    return Ok((bind.rc, bind.text));
                }
                ldap.modify(dn, change()).await.map(|result| (result.rc, result.text))
            })
            .await?;
        if !(rc == INVALID_CREDENTIALS && ad::password_must_change(&text)) {
            return Ok((rc, text));
        }
        // The old password is right but expired, or must be changed before first use: AD
        // refuses the user's own bind, so the change goes over the service account's TLS
        // connection. A change (delete the old value, add the new) still proves the old
        // password; AD grants that right (User-Change-Password) to everyone by default.
        self.with_retry_then("password change", AfterUse::Retire, |mut ldap| async move {
            ldap.modify(dn, change()).await.map(|result| (result.rc, result.text))
        })
        .await
    }
}
