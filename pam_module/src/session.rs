//! `pam_sm_open_session`: one `OpenSession` request; if the agent names a home directory that
//! does not exist yet, create it from the skeleton ([`crate::home`]).
//!
//! Best effort toward the directory: an unknown user (a local account) or an agent that
//! cannot answer is PAM_IGNORE (logged), never a failed session. A home that should be
//! created but cannot be fails the session, as with `pam_mkhomedir`: the user would otherwise
//! land in `/` with a broken environment. `pam_sm_close_session` has nothing to undo.

use std::path::Path;

use lanyard_proto::{Request, Response};

use crate::handle::{Call, Flags, Notice, Pam};
use crate::home::{self, Home};
use crate::options::Options;
use crate::status::Error;

/// Where new homes are copied from.
pub const SKEL: &str = "/etc/skel";

/// The `pam_sm_open_session` logic. `None`: the agent asked for no home directory.
pub fn open(pam: &mut impl Pam, options: &Options, flags: Flags, skel: &Path) -> Result<Option<Home>, Error> {
    let mut call = Call::start(pam, options, flags, "session")?;
    call.check_minimum_uid()?;
    let request = Request::OpenSession { user: call.user.clone(), context: call.context.clone() };
    let home = match call.ask(&request)? {
        Response::SessionReady { home: Some(home) } => home,
        Response::SessionReady { home: None } => {
            call.log.debug(format_args!("session opened; {}", call.origin()));
            return Ok(None);
        }
        other => return Err(call.not_the_answer(other)),
    };
    match home::ensure(&home, skel) {
        Ok(Home::Existed) => {
            call.log.debug(format_args!("session opened, home {} exists; {}", home.path, call.origin()));
            Ok(Some(Home::Existed))
        }
        Ok(Home::Created) => {
            call.log.notice(format_args!(
                "created home directory {} from {}; {}",
                home.path,
                skel.display(),
                call.origin()
            ));
            call.tell(Notice::Info, &format!("Creating directory '{}'.", home.path));
            Ok(Some(Home::Created))
        }
        Err(e) => {
            call.log.error(format_args!("cannot create home directory {}: {e}; {}", home.path, call.origin()));
            call.tell(Notice::Error, &format!("Unable to create and initialize directory '{}'.", home.path));
            Err(Error::HomeNotCreated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_agent::{self, FakeAgent, scratch_dir};
    use crate::fake_pam::FakePam;
    use crate::handle::captured;
    use crate::status;
    use lanyard_proto::HomeDirectory;
    use pam_sys::{PAM_IGNORE, PAM_PERM_DENIED, PAM_SUCCESS};
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn options(agent: &FakeAgent, args: &[&str]) -> Options {
        let mut options = Options::parse(args.iter().map(|a| a.as_bytes()));
        options.socket = Some(agent.path().to_owned());
        options
    }

    /// An agent that puts alice's home at `path`.
    fn agent_with_home(path: PathBuf) -> FakeAgent {
        fake_agent::start(move |request: &Request| match request {
            Request::OpenSession { user, .. } if user == "alice" => Response::SessionReady {
                home: Some(HomeDirectory { path: path.to_str().unwrap().into(), uid: 10001, gid: 100, mode: 0o700 }),
            },
            other => fake_agent::directory(other),
        })
    }

    fn skel() -> PathBuf {
        let skel = scratch_dir().join("skel");
        fs::create_dir(&skel).unwrap();
        fs::write(skel.join(".bashrc"), b"# bashrc\n").unwrap();
        skel
    }

    #[test]
    fn a_missing_home_is_created_and_the_user_is_told() {
        let path = scratch_dir().join("alice");
        let agent = agent_with_home(path.clone());
        let mut pam = FakePam::new("alice");
        let options = options(&agent, &[]);
        let outcome = open(&mut pam, &options, Flags::default(), &skel());
        assert_eq!(outcome, Ok(Some(Home::Created)));
        assert_eq!(status::session(&outcome, &options), PAM_SUCCESS);
        assert_eq!(fs::read(path.join(".bashrc")).unwrap(), b"# bashrc\n");
        let expected = format!("Creating directory '{}'.", path.display());
        assert_eq!(pam.shown, [(Notice::Info, expected)]);
        if fake_agent::running_as_root() {
            assert_eq!(fs::metadata(&path).unwrap().uid(), 10001);
        }
    }

    #[test]
    fn an_existing_home_is_success_and_untouched() {
        let path = scratch_dir().join("alice");
        fs::create_dir(&path).unwrap();
        let agent = agent_with_home(path.clone());
        let mut pam = FakePam::new("alice");
        assert_eq!(open(&mut pam, &options(&agent, &[]), Flags::default(), &skel()), Ok(Some(Home::Existed)));
        assert!(pam.shown.is_empty());
        assert_eq!(fs::read_dir(&path).unwrap().count(), 0);
    }

    #[test]
    fn a_home_that_cannot_be_created_is_perm_denied_and_the_user_is_told() {
        let path = scratch_dir().join("missing-parent").join("alice");
        let agent = agent_with_home(path.clone());
        let mut pam = FakePam::new("alice");
        let options = options(&agent, &[]);
        let outcome = open(&mut pam, &options, Flags::default(), &skel());
        assert_eq!(status::session(&outcome, &options), PAM_PERM_DENIED);
        let expected = format!("Unable to create and initialize directory '{}'.", path.display());
        assert_eq!(pam.shown, [(Notice::Error, expected)]);
    }

    #[test]
    fn pam_silent_creates_the_home_without_a_message() {
        let path = scratch_dir().join("alice");
        let agent = agent_with_home(path.clone());
        let mut pam = FakePam::new("alice");
        let silent = Flags { silent: true, ..Flags::default() };
        assert_eq!(open(&mut pam, &options(&agent, &[]), silent, &skel()), Ok(Some(Home::Created)));
        assert!(pam.shown.is_empty());
    }

    #[test]
    fn no_home_asked_for_is_a_plain_success() {
        let agent = fake_agent::start(|_: &Request| Response::SessionReady { home: None });
        let mut pam = FakePam::new("alice");
        assert_eq!(open(&mut pam, &options(&agent, &[]), Flags::default(), &skel()), Ok(None));
    }

    #[test]
    fn a_local_user_is_ignored() {
        let agent = fake_agent::start(fake_agent::directory);
        let options = options(&agent, &[]);
        let outcome = open(&mut FakePam::new("ghost"), &options, Flags::default(), &skel());
        assert_eq!(status::session(&outcome, &options), PAM_IGNORE);
    }

    #[test]
    fn an_agent_that_is_away_never_fails_the_session_and_is_logged() {
        let agent = fake_agent::start(fake_agent::directory);
        captured::take();
        let options = options(&agent, &[]);
        let outcome = open(&mut FakePam::new("down"), &options, Flags::default(), &skel());
        assert_eq!(status::session(&outcome, &options), PAM_IGNORE);

        let socket = scratch_dir().join("nobody-listens.sock");
        let nobody = Options { socket: Some(socket), ..Options::default() };
        let outcome = open(&mut FakePam::new("alice"), &nobody, Flags::default(), &skel());
        assert_eq!(status::session(&outcome, &nobody), PAM_IGNORE);

        let lines = captured::take();
        assert_eq!(lines.iter().filter(|(level, _)| *level == libc::LOG_WARNING).count(), 2, "{lines:?}");
    }
}
