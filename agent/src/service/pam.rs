//! The login side of the service: authentication, the account phase, password changes and
//! sessions. Each request is checked against the caller first ([`crate::policy`]), and every
//! authentication and password change leaves one audit line (target `lanyard::audit`) that
//! never holds a password.

use std::time::{SystemTime, UNIX_EPOCH};

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{HomeDirectory, PamContext, Passwd, Response, Secret};
use tracing::info;

use super::Service;
use crate::cache::StoreKey;
use crate::directory::{AccountState, Directory, PasswordChange, PasswordCheck};
use crate::policy::{Caller, may_act_for};

/// `shadowMax` at or above this means "never expires" (shadow(5) uses 99999).
const SHADOW_MAX_NEVER: i64 = 99_999;

impl<D: Directory> Service<D> {
    pub(super) async fn authenticate(
        &self,
        caller: Caller,
        user: &str,
        password: &Secret,
        context: &PamContext,
    ) -> Response {
        let response = match self.user_for(caller, user).await {
            Err(response) => response,
            Ok(_) => match self.limiter.check(user, caller.uid) {
                Err(wait) => self.refused_for_failures(wait),
                // Never bind with an empty password (RFC 4513 5.1.2): it is simply wrong.
                Ok(()) if password.is_empty() => self.failed(user, caller),
                Ok(()) if !self.health.is_online() => self.authenticate_offline(user, password).await,
                Ok(()) => {
                    let result = self.directory.check_password(user, password).await;
                    self.health.observe(&result);
                    match result {
                        Ok(PasswordCheck::Accepted) => {
                            self.limiter.record_success(user);
                            self.after_online_login(user, password, context).await;
                            Response::Authenticated { offline: false }
                        }
                        // Right, but AD will not let it be used until it is changed: the
                        // login goes on to the account phase, which asks for a new one. No
                        // offline verifier is kept for a password that must go.
                        Ok(PasswordCheck::MustChange) => {
                            self.limiter.record_success(user);
                            self.forget_password(user);
                            Response::Authenticated { offline: false }
                        }
                        // Wrong while online: never a second chance against the verifier.
                        Ok(PasswordCheck::Rejected) => self.failed(user, caller),
                        Ok(PasswordCheck::NoSuchUser) => Response::NotFound,
                        Err(e) if e.is_unreachable() => self.authenticate_offline(user, password).await,
                        Err(e) => Response::Unavailable(e.public_reason().to_owned()),
                    }
                }
            },
        };
        audit("auth", user, caller, context, &response, self.health.is_online());
        response
    }

    /// After a successful online login: keep an offline verifier of the password, but only
    /// for an account that would pass the account phase now. An expired or locked account
    /// authenticates (the account phase then refuses it) and must not be able to log in
    /// offline later with no account phase to stop it.
    async fn after_online_login(&self, user: &str, password: &Secret, context: &PamContext) {
        if self.persist.is_none() || self.verifier_is_recent(user) {
            return;
        }
        match self.account_verdict(user, context).await {
            Response::AccountOk { .. } => self.remember_password(user, password),
            Response::Unavailable(_) => {}
            _ => self.forget_password(user),
        }
    }

    pub(super) async fn check_account(&self, caller: Caller, user: &str, context: &PamContext) -> Response {
        if let Err(response) = self.user_for(caller, user).await {
            return response;
        }
        if !self.health.is_online() {
            return self.check_account_offline(user).await;
        }
        match self.account_verdict(user, context).await {
            Response::Unavailable(_) if !self.health.is_online() => self.check_account_offline(user).await,
            verdict @ (Response::AccountOk { .. } | Response::Unavailable(_)) => verdict,
            denied => {
                // Whatever the reason, no offline login either.
                self.forget_password(user);
                denied
            }
        }
    }

    /// The account phase's answer from the directory: locked, expired, access rules,
    /// password age.
    async fn account_verdict(&self, user: &str, context: &PamContext) -> Response {
        let result = self.directory.account(user).await;
        self.health.observe(&result);
        let state = match result {
            Ok(Some(state)) => state,
            Ok(None) => return Response::NotFound,
            Err(e) => return Response::Unavailable(e.public_reason().to_owned()),
        };
        let now = seconds_since_epoch();
        if let Some(refusal) = account_refusal(&state, now) {
            return refusal;
        }
        if let Err(response) = self.check_access_rules(&state.user, context).await {
            return response;
        }
        password_verdict(&state, now)
    }

    /// Offline, the account phase can only check what is cached: an offline verifier exists
    /// only for accounts that passed it when last online, and `pam.allowed_groups` is checked
    /// against cached groups. `pam.access_filter` needs the directory and is not checked.
    async fn check_account_offline(&self, user: &str) -> Response {
        if !self.has_offline_password(user).await {
            return Response::Unavailable("offline, and no offline login for this account".into());
        }
        let passwd = match self.user_for(Caller { uid: 0, pid: None }, user).await {
            Ok(passwd) => passwd,
            Err(response) => return response,
        };
        if let Err(response) = self.check_allowed_groups(&passwd).await {
            return response;
        }
        Response::AccountOk { warning: Some("Logged in offline: the directory cannot be reached.".into()) }
    }

    pub(super) async fn change_password(
        &self,
        caller: Caller,
        user: &str,
        old: Option<&Secret>,
        new: &Secret,
        context: &PamContext,
    ) -> Response {
        let response = match self.user_for(caller, user).await {
            Err(response) => response,
            Ok(_) if old.is_none() && !(caller.is_root() && self.pam.root_may_reset_passwords) => Response::Refused(
                "changing a password without the current one is only for root, with pam.root_may_reset_passwords"
                    .into(),
            ),
            Ok(_) if new.is_empty() => Response::PasswordRejected("The new password is empty.".into()),
            Ok(_) if !self.health.is_online() => {
                Response::Unavailable("offline: passwords can only be changed while the directory is reachable".into())
            }
            Ok(_) => match self.limiter.check(user, caller.uid) {
                Err(wait) => self.refused_for_failures(wait),
                Ok(()) => {
                    let result = self.directory.change_password(user, old, new).await;
                    self.health.observe(&result);
                    match result {
                        Ok(PasswordChange::Changed) => {
                            // The old password must stop working offline too, at once.
                            self.remember_password_now(user, new).await;
                            Response::PasswordChanged
                        }
                        Ok(PasswordChange::WrongOldPassword) => self.failed(user, caller),
                        Ok(PasswordChange::Rejected(why)) => Response::PasswordRejected(why),
                        Ok(PasswordChange::NoSuchUser) => Response::NotFound,
                        Err(e) => Response::Unavailable(e.public_reason().to_owned()),
                    }
                }
            },
        };
        audit("password change", user, caller, context, &response, self.health.is_online());
        response
    }

    pub(super) async fn open_session(&self, caller: Caller, user: &str) -> Response {
        let passwd = match self.user_for(caller, user).await {
            Ok(passwd) => passwd,
            Err(response) => return response,
        };
        let home = (self.pam.create_home && is_creatable_home(&passwd.home)).then(|| HomeDirectory {
            path: passwd.home.clone(),
            uid: passwd.uid,
            gid: passwd.gid,
            mode: self.pam.home_mode,
        });
        Response::SessionReady { home }
    }

    /// The user's entry if this caller may ask about it; otherwise the response to send.
    async fn user_for(&self, caller: Caller, user: &str) -> Result<Passwd, Response> {
        if !is_valid_name(user) {
            return Err(Response::NotFound);
        }
        let answer = self.lookup(StoreKey::UserByName(user.to_owned())).await;
        let passwd = match &*answer {
            Response::User(passwd) => passwd,
            other => return Err(other.clone()),
        };
        may_act_for(&caller, passwd).map_err(Response::Refused)?;
        Ok(passwd.clone())
    }

    fn refused_for_failures(&self, wait: std::time::Duration) -> Response {
        self.metrics.rate_limited.inc();
        too_many(wait)
    }

    fn failed(&self, user: &str, caller: Caller) -> Response {
        self.limiter.record_failure(user, caller.uid);
        Response::WrongPassword
    }

    /// `pam.allowed_groups`: membership or primary group, from cached groups when offline.
    async fn check_allowed_groups(&self, user: &Passwd) -> Result<(), Response> {
        if self.pam.allowed_groups.is_empty() {
            return Ok(());
        }
        for name in &self.pam.allowed_groups {
            match &*self.lookup(StoreKey::GroupByName(name.clone())).await {
                Response::Group(group) if group.gid == user.gid || group.members.contains(&user.name) => return Ok(()),
                Response::Group(_) | Response::NotFound => {}
                other => return Err(other.clone()),
            }
        }
        Err(Response::Denied(format!("Access denied: {} is not in a group allowed to log in here.", user.name)))
    }

    /// `pam.allowed_groups` and `pam.access_filter`.
    async fn check_access_rules(&self, user: &Passwd, context: &PamContext) -> Result<(), Response> {
        self.check_allowed_groups(user).await?;
        if let Some(template) = &self.pam.access_filter {
            // Escaping keeps a NUL from ending the value, but slapd normalizes an IA5 value
            // such as `alice\00` to `alice`: control characters never reach a filter at all.
            if [user.name.as_str(), self.host.as_str(), context.service.as_str()]
                .iter()
                .any(|value| value.chars().any(char::is_control))
            {
                return Err(Response::Denied("Access denied: the request carries control characters.".into()));
            }
            let filter = template
                .replace("{user}", &ldap3::ldap_escape(user.name.as_str()))
                .replace("{host}", &ldap3::ldap_escape(self.host.as_str()))
                .replace("{service}", &ldap3::ldap_escape(context.service.as_str()));
            let result = self.directory.user_matches(&user.name, &filter).await;
            self.health.observe(&result);
            match result {
                Ok(true) => {}
                Ok(false) => return Err(Response::Denied("Access denied by the directory's access rule.".into())),
                Err(e) => return Err(Response::Unavailable(e.public_reason().to_owned())),
            }
        }
        Ok(())
    }
}

fn too_many(wait: std::time::Duration) -> Response {
    Response::TooManyAttempts { retry_after_secs: wait.as_secs().clamp(1, u64::from(u32::MAX)) as u32 }
}

/// Why the directory's account state refuses a login now (`now` in Unix seconds), if it does:
/// locked by the password policy, disabled (AD), expired (`shadowExpire`, AD's `accountExpires`).
fn account_refusal(state: &AccountState, now: i64) -> Option<Response> {
    if state.locked {
        return Some(Response::Denied("Your account is locked by the password policy; ask an administrator.".into()));
    }
    if state.disabled {
        return Some(Response::AccountExpired("Your account is disabled; ask an administrator.".into()));
    }
    let today = now.div_euclid(86_400);
    let shadow_expired = state.shadow_expire.is_some_and(|expire| expire >= 0 && today >= expire);
    if shadow_expired || state.expires_at.is_some_and(|at| now >= at) {
        return Some(Response::AccountExpired("Your account has expired; ask an administrator.".into()));
    }
    None
}

/// Whether the password must change: AD's expiry time when the directory gave one, else the
/// shadow rules.
fn password_verdict(state: &AccountState, now: i64) -> Response {
    match state.password_expires_at {
        Some(i64::MIN) => {
            Response::PasswordExpired("You must change your password now (administrator enforced).".into())
        }
        Some(at) if now >= at => Response::PasswordExpired("Your password has expired; you must change it now.".into()),
        _ => password_age(state, now.div_euclid(86_400)),
    }
}

/// The password-age rules of shadow(5), as pam_unix applies them.
fn password_age(state: &AccountState, today: i64) -> Response {
    let Some(last_change) = state.shadow_last_change else { return Response::AccountOk { warning: None } };
    if last_change == 0 {
        return Response::PasswordExpired("You must change your password now (administrator enforced).".into());
    }
    let Some(max) = state.shadow_max.filter(|max| (0..SHADOW_MAX_NEVER).contains(max)) else {
        return Response::AccountOk { warning: None };
    };
    let age = today - last_change;
    if age > max {
        return Response::PasswordExpired("Your password has expired; you must change it now.".into());
    }
    let warning = state.shadow_warning.filter(|warn| *warn > 0 && age > max - warn).map(|_| {
        let days = max - age;
        format!("Your password will expire in {days} day{}.", if days == 1 { "" } else { "s" })
    });
    Response::AccountOk { warning }
}

fn seconds_since_epoch() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Only a plain absolute path below `/`: never `/` itself, `..`, `.` or empty components.
fn is_creatable_home(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.contains('\0')
        && path[1..].split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

fn audit(event: &str, user: &str, caller: Caller, context: &PamContext, response: &Response, online: bool) {
    let result = match response {
        Response::Authenticated { offline: false } => "success",
        Response::Authenticated { offline: true } => "success (offline)",
        Response::PasswordChanged => "changed",
        Response::WrongPassword => "wrong password",
        Response::PasswordRejected(_) => "rejected by policy",
        Response::TooManyAttempts { .. } => "too many attempts",
        Response::NotFound => "unknown user",
        Response::Refused(_) => "refused for this caller",
        Response::Unavailable(_) => "directory unavailable",
        _ => "other",
    };
    info!(
        target: "lanyard::audit",
        event,
        user,
        service = context.service.as_str(),
        rhost = context.rhost.as_str(),
        tty = context.tty.as_str(),
        caller_uid = caller.uid,
        caller_pid = caller.pid,
        result,
        mode = if online { "online" } else { "offline" },
        "{event} for {user}: {result}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(last_change: Option<i64>, max: Option<i64>, warning: Option<i64>) -> AccountState {
        let user = Passwd {
            name: "a".into(),
            uid: 1,
            gid: 1,
            gecos: String::new(),
            home: String::new(),
            shell: String::new(),
        };
        AccountState {
            user,
            shadow_expire: None,
            shadow_last_change: last_change,
            shadow_max: max,
            shadow_warning: warning,
            locked: false,
            disabled: false,
            expires_at: None,
            password_expires_at: None,
        }
    }

    #[test]
    fn a_password_older_than_shadow_max_must_change() {
        assert!(matches!(password_age(&state(Some(1), Some(30), None), 20_000), Response::PasswordExpired(_)));
        assert!(matches!(password_age(&state(Some(0), None, None), 20_000), Response::PasswordExpired(_)));
    }

    #[test]
    fn a_password_near_its_end_warns_and_one_without_limits_does_not() {
        assert_eq!(
            password_age(&state(Some(19_990), Some(30), Some(7)), 20_015),
            Response::AccountOk { warning: Some("Your password will expire in 5 days.".into()) }
        );
        assert_eq!(password_age(&state(Some(1), Some(99_999), Some(7)), 20_000), Response::AccountOk { warning: None });
        assert_eq!(password_age(&state(None, None, None), 20_000), Response::AccountOk { warning: None });
    }

    #[test]
    fn disabled_and_expired_ad_accounts_are_refused_and_an_expired_ad_password_must_change() {
        let now = 1_800_000_000;
        let ok = state(None, None, None);
        assert_eq!(account_refusal(&ok, now), None);
        let disabled = AccountState { disabled: true, ..ok.clone() };
        assert!(matches!(account_refusal(&disabled, now), Some(Response::AccountExpired(m)) if m.contains("disabled")));
        let expired = AccountState { expires_at: Some(now), ..ok.clone() };
        assert!(matches!(account_refusal(&expired, now), Some(Response::AccountExpired(_))));
        let expires_later = AccountState { expires_at: Some(now + 1), ..ok.clone() };
        assert_eq!(account_refusal(&expires_later, now), None);
        for at in [i64::MIN, now - 1, now] {
            let must_change = AccountState { password_expires_at: Some(at), ..ok.clone() };
            assert!(matches!(password_verdict(&must_change, now), Response::PasswordExpired(_)), "{at}");
        }
        let later = AccountState { password_expires_at: Some(now + 86_400), ..ok.clone() };
        assert_eq!(password_verdict(&later, now), Response::AccountOk { warning: None });
    }

    #[test]
    fn only_plain_absolute_homes_are_created() {
        assert!(is_creatable_home("/home/alice"));
        for bad in ["", "/", "home/alice", "/home/../etc", "/home//alice", "/home/./alice", "/home/alice/"] {
            assert!(!is_creatable_home(bad), "{bad:?}");
        }
    }
}
