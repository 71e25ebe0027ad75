//! The module arguments, parsed from the `argv` libpam hands each entry point.
//!
//! The same arguments reach every phase of a module line; each phase reads the ones it needs.
//! An argument that is not understood (or has a bad value) is kept in [`Options::ignored`] for
//! the log and otherwise ignored, like `pam_unix` and nss-pam-ldapd's `pam_ldap` do: a typo in
//! `/etc/pam.d` must not lock everybody out.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where `pam_sm_authenticate` takes the password from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FirstPass {
    /// Always ask through the conversation.
    #[default]
    Prompt,
    /// `try_first_pass`: `PAM_AUTHTOK` if an earlier module set it, else ask.
    Try,
    /// `use_first_pass`: `PAM_AUTHTOK` only; never ask.
    Use,
}

/// The parsed arguments of one module line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub first_pass: FirstPass,
    /// `use_authtok`: the new password (chauthtok) is `PAM_AUTHTOK`, set by an earlier module.
    pub use_authtok: bool,
    /// `ignore_unknown_user`: PAM_IGNORE instead of PAM_USER_UNKNOWN.
    pub ignore_unknown_user: bool,
    /// `ignore_authinfo_unavail`: PAM_IGNORE instead of PAM_AUTHINFO_UNAVAIL.
    pub ignore_authinfo_unavail: bool,
    /// `minimum_uid=N`: users with a smaller uid are left to other modules (PAM_IGNORE).
    pub minimum_uid: Option<u32>,
    /// `debug`: log routine successes too.
    pub debug: bool,
    /// `socket=PATH`: the agent's socket, instead of [`lanyard_proto::DEFAULT_SOCKET`].
    pub socket: Option<PathBuf>,
    /// Arguments that were not understood, escaped for the log.
    pub ignored: Vec<String>,
}

impl Options {
    /// Parses the arguments in order; for repeated ones the last wins, except that
    /// `use_first_pass` beats `try_first_pass` wherever they stand.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Options {
        let mut options = Options::default();
        for arg in args {
            if !options.apply(arg) {
                options.ignored.push(String::from_utf8_lossy(arg).escape_debug().to_string());
            }
        }
        options
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        self.socket.as_deref().unwrap_or(Path::new(lanyard_proto::DEFAULT_SOCKET))
    }

    /// Applies one argument; false if it is not understood.
    fn apply(&mut self, arg: &[u8]) -> bool {
        match arg {
            b"use_first_pass" => self.first_pass = FirstPass::Use,
            b"try_first_pass" if self.first_pass != FirstPass::Use => self.first_pass = FirstPass::Try,
            b"try_first_pass" => {}
            b"use_authtok" => self.use_authtok = true,
            b"ignore_unknown_user" => self.ignore_unknown_user = true,
            b"ignore_authinfo_unavail" => self.ignore_authinfo_unavail = true,
            b"debug" => self.debug = true,
            _ => {
                if let Some(value) = arg.strip_prefix(b"minimum_uid=") {
                    let Some(uid) = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u32>().ok()) else {
                        return false;
                    };
                    // Every uid is at least 0: no minimum, and no lookup to enforce one.
                    self.minimum_uid = Some(uid).filter(|&uid| uid > 0);
                } else if let Some(value) = arg.strip_prefix(b"socket=") {
                    // Relative to what? The host program's working directory is no anchor.
                    let path = Path::new(OsStr::from_bytes(value));
                    if !path.is_absolute() {
                        return false;
                    }
                    self.socket = Some(path.to_owned());
                } else {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::parse(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn no_arguments_mean_prompting_and_the_default_socket() {
        let options = parse(&[]);
        assert_eq!(options, Options::default());
        assert_eq!(options.first_pass, FirstPass::Prompt);
        assert_eq!(options.socket(), Path::new("/run/lanyard/socket"));
    }

    #[test]
    fn every_documented_argument_is_understood() {
        let options = parse(&[
            "try_first_pass",
            "use_authtok",
            "ignore_unknown_user",
            "ignore_authinfo_unavail",
            "minimum_uid=1000",
            "debug",
            "socket=/tmp/x/socket",
        ]);
        assert_eq!(
            options,
            Options {
                first_pass: FirstPass::Try,
                use_authtok: true,
                ignore_unknown_user: true,
                ignore_authinfo_unavail: true,
                minimum_uid: Some(1000),
                debug: true,
                socket: Some(PathBuf::from("/tmp/x/socket")),
                ignored: vec![],
            }
        );
        assert_eq!(options.socket(), Path::new("/tmp/x/socket"));
    }

    #[test]
    fn use_first_pass_wins_over_try_first_pass_in_either_order() {
        assert_eq!(parse(&["use_first_pass", "try_first_pass"]).first_pass, FirstPass::Use);
        assert_eq!(parse(&["try_first_pass", "use_first_pass"]).first_pass, FirstPass::Use);
    }

    #[test]
    fn unknown_arguments_and_bad_values_are_kept_for_the_log_and_otherwise_ignored() {
        let options = parse(&[
            "nullok",
            "minimum_uid=-1",
            "minimum_uid=lots",
            "socket=relative/socket",
            "socket=",
            "debug",
            "tab\there",
        ]);
        assert_eq!(
            options.ignored,
            ["nullok", "minimum_uid=-1", "minimum_uid=lots", "socket=relative/socket", "socket=", "tab\\there"]
        );
        assert!(options.debug);
        assert_eq!(options.minimum_uid, None);
        assert_eq!(options.socket, None);
    }

    #[test]
    fn minimum_uid_zero_means_no_minimum() {
        assert_eq!(parse(&["minimum_uid=0"]).minimum_uid, None);
        assert_eq!(parse(&["minimum_uid=1", "minimum_uid=500"]).minimum_uid, Some(500));
    }

    #[test]
    fn arguments_that_are_not_utf8_are_escaped_in_the_log() {
        let options = Options::parse([&b"\xff\xfe"[..], b"socket=/run/\xffsock"]);
        assert_eq!(options.ignored, ["\u{fffd}\u{fffd}"]);
        assert_eq!(options.socket(), Path::new(OsStr::from_bytes(b"/run/\xffsock")));
    }
}
