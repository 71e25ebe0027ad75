//! What a phase sees instead of the raw PAM handle ([`Pam`]), and what every phase starts with
//! ([`Call`]): the log, the checked user name, the request context and the way to the agent.
//!
//! `ffi.rs` implements [`Pam`] over libpam; the tests implement it with a scripted fake, so
//! every phase runs in a unit test without libpam.

use std::fmt::Display;

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Client, Deadlines, PamContext, Passwd, Request, Response, Secret};
use libc::c_int;

use crate::options::Options;
use crate::status::{Error, Unavailable};

/// The PAM items that are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextItem {
    Service,
    Rhost,
    Tty,
    Ruser,
}

/// The PAM items that hold a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// `PAM_AUTHTOK`: the password (auth), the new password (chauthtok).
    New,
    /// `PAM_OLDAUTHTOK`: the current password while changing it.
    Old,
}

/// A message for the user that needs no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// `PAM_ERROR_MSG`.
    Error,
    /// `PAM_TEXT_INFO`.
    Info,
}

/// The PAM handle and its conversation, as one phase needs them.
pub trait Pam {
    /// `pam_get_user`: the user name, asked through the conversation if the application did
    /// not set it. Bytes: the name is checked by [`Call::start`], not here.
    fn user(&mut self) -> Result<Vec<u8>, Error>;
    /// A text item; `None` when unset (or unreadable: these only feed logs and the context).
    fn text(&self, item: TextItem) -> Option<String>;
    /// A credential item; `None` when unset.
    fn token(&self, token: Token) -> Result<Option<Secret>, Error>;
    /// Sets a credential item, so that later modules in the stack can use it.
    fn set_token(&mut self, token: Token, value: &Secret) -> Result<(), Error>;
    /// Asks with `PAM_PROMPT_ECHO_OFF`. A conversation that answers nothing is an error.
    fn prompt_hidden(&mut self, prompt: &str) -> Result<Secret, Error>;
    /// Shows a message that needs no answer.
    fn show(&mut self, notice: Notice, text: &str) -> Result<(), Error>;
    /// The real uid of the calling process (root for sshd and login, the user for a screen
    /// locker or `passwd`).
    fn caller_uid(&self) -> u32;
}

/// The `flags` argument of an entry point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `PAM_SILENT`: show the user nothing.
    pub silent: bool,
    /// `PAM_PRELIM_CHECK`: chauthtok's first pass.
    pub prelim_check: bool,
    /// `PAM_UPDATE_AUTHTOK`: chauthtok's second pass.
    pub update_authtok: bool,
    /// `PAM_CHANGE_EXPIRED_AUTHTOK`: chauthtok because the password expired (sshd, login).
    pub change_expired_authtok: bool,
}

impl Flags {
    pub fn from_bits(bits: c_int) -> Flags {
        let set = |flag: c_int| bits & flag != 0;
        Flags {
            silent: set(pam_sys::PAM_SILENT),
            prelim_check: set(pam_sys::PAM_PRELIM_CHECK),
            update_authtok: set(pam_sys::PAM_UPDATE_AUTHTOK),
            change_expired_authtok: set(pam_sys::PAM_CHANGE_EXPIRED_AUTHTOK),
        }
    }
}

/// One call of an entry point: what every phase needs once it knows who the user is.
pub struct Call<'a, P: Pam> {
    pub pam: &'a mut P,
    pub options: &'a Options,
    pub flags: Flags,
    pub log: Logger,
    /// The user, checked against the protocol's name rule.
    pub user: String,
    pub context: PamContext,
}

impl<'a, P: Pam> Call<'a, P> {
    /// Logs ignored arguments and gets the user. A name that cannot be a login name is an
    /// unknown user at once: nothing is sent, and the name is not logged (people type
    /// passwords into login prompts).
    pub fn start(pam: &'a mut P, options: &'a Options, flags: Flags, phase: &str) -> Result<Call<'a, P>, Error> {
        let service = pam.text(TextItem::Service).unwrap_or_default();
        let log = Logger::new(&service, phase, options.debug);
        for argument in &options.ignored {
            log.error(format_args!("unknown argument or bad value ignored: {argument}"));
        }
        let name = pam.user().inspect_err(|e| log.error(format_args!("cannot get the user name: {e:?}")))?;
        let user = match String::from_utf8(name) {
            Ok(name) if is_valid_name(&name) => name,
            _ => {
                log.notice("a user name that cannot be a login name was refused without asking the agent");
                return Err(Error::UnknownUser);
            }
        };
        let context = PamContext {
            service,
            rhost: pam.text(TextItem::Rhost).unwrap_or_default(),
            tty: pam.text(TextItem::Tty).unwrap_or_default(),
            ruser: pam.text(TextItem::Ruser).unwrap_or_default(),
        };
        Ok(Call { pam, options, flags, log, user, context })
    }

    /// Sends one request and returns the answer; no answer is [`Unavailable::Unreachable`].
    pub fn ask(&self, request: &Request) -> Result<Response, Error> {
        let socket = self.options.socket();
        Client::call(socket, request, Deadlines::default()).map_err(|e| {
            self.log.warning(format_args!("no answer from the agent at {}: {e}", socket.display()));
            Error::Unavailable(Unavailable::Unreachable)
        })
    }

    /// The user's entry, from the agent.
    pub fn lookup(&self) -> Result<Passwd, Error> {
        match self.ask(&Request::UserByName(self.user.clone()))? {
            Response::User(user) => Ok(user),
            other => Err(self.not_the_answer(other)),
        }
    }

    /// With `minimum_uid=N`, users below it are not ours ([`Error::BelowMinimumUid`]). Asks
    /// the agent only when the argument is given.
    pub fn check_minimum_uid(&self) -> Result<(), Error> {
        match self.options.minimum_uid {
            Some(_) => self.check_uid(&self.lookup()?),
            None => Ok(()),
        }
    }

    /// [`Call::check_minimum_uid`] for an entry already at hand.
    pub fn check_uid(&self, entry: &Passwd) -> Result<(), Error> {
        match self.options.minimum_uid {
            Some(minimum) if entry.uid < minimum => {
                self.log.debug(format_args!("user {} has uid {} below minimum_uid={minimum}", self.user, entry.uid));
                Err(Error::BelowMinimumUid)
            }
            _ => Ok(()),
        }
    }

    /// The answers any request can get besides its own, as errors, logged.
    pub fn not_the_answer(&self, response: Response) -> Error {
        match response {
            Response::NotFound => {
                self.log.debug(format_args!("user {} is not in the directory", self.user));
                Error::UnknownUser
            }
            Response::Unavailable(why) => {
                self.log.warning(format_args!("the agent cannot answer for {}: {why}", self.user));
                Error::Unavailable(Unavailable::AgentUnavailable)
            }
            Response::Refused(why) => {
                self.log.notice(format_args!("the agent refused this caller for {}: {why}", self.user));
                Error::Refused
            }
            other => {
                self.log.error(format_args!("unexpected answer from the agent for {}: {}", self.user, other.summary()));
                Error::Unavailable(Unavailable::UnexpectedResponse)
            }
        }
    }

    /// The agent's rate limit stopped this attempt: logged, and the user is told when to retry.
    pub fn too_many_attempts(&mut self, retry_after_secs: u32) -> Error {
        self.log.notice(format_args!("too many failed attempts, retry in {retry_after_secs} s; {}", self.origin()));
        self.tell(Notice::Error, &format!("Too many failed attempts; try again in {retry_after_secs} seconds."));
        Error::TooManyAttempts
    }

    /// Shows `text` unless `PAM_SILENT`. A conversation that cannot show it changes nothing.
    pub fn tell(&mut self, notice: Notice, text: &str) {
        if self.flags.silent || text.is_empty() {
            return;
        }
        if let Err(e) = self.pam.show(notice, text) {
            self.log.debug(format_args!("the conversation did not show a message: {e:?}"));
        }
    }

    /// Where the request came from, for log lines about attempts.
    pub fn origin(&self) -> String {
        let c = &self.context;
        format!("user={} rhost={} tty={} ruser={}", self.user, c.rhost, c.tty, c.ruser)
    }
}

/// Lines for syslog (LOG_AUTHPRIV), prefixed `pam_lanyard(<service>:<phase>): ` like libpam's
/// own `pam_syslog`. Never give it a password: nothing here could tell.
#[derive(Debug, Clone)]
pub struct Logger {
    prefix: String,
    debug: bool,
}

impl Logger {
    pub fn new(service: &str, phase: &str, debug: bool) -> Logger {
        Logger { prefix: format!("pam_lanyard({}:{phase}): ", printable(service)), debug }
    }

    /// Routine successes: only with the `debug` argument.
    pub fn debug(&self, message: impl Display) {
        if self.debug {
            self.write(libc::LOG_DEBUG, message);
        }
    }

    pub fn info(&self, message: impl Display) {
        self.write(libc::LOG_INFO, message);
    }

    pub fn notice(&self, message: impl Display) {
        self.write(libc::LOG_NOTICE, message);
    }

    pub fn warning(&self, message: impl Display) {
        self.write(libc::LOG_WARNING, message);
    }

    pub fn error(&self, message: impl Display) {
        self.write(libc::LOG_ERR, message);
    }

    fn write(&self, level: c_int, message: impl Display) {
        let line = format!("{}{}", self.prefix, printable(&message.to_string()));
        emit(level, &line);
    }
}

/// Control characters (a newline in an rhost, an agent's message) escaped, so that one call
/// is one log line and cannot forge another.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(not(test))]
fn emit(level: c_int, line: &str) {
    crate::ffi::syslog(level, line);
}

#[cfg(test)]
fn emit(level: c_int, line: &str) {
    captured::LINES.with(|lines| lines.borrow_mut().push((level, line.to_owned())));
}

/// In this crate's tests, log lines are kept per test thread instead of going to syslog.
#[cfg(test)]
pub(crate) mod captured {
    use std::cell::RefCell;

    thread_local! {
        pub(super) static LINES: RefCell<Vec<(libc::c_int, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// The lines logged on this thread so far, emptying the list.
    pub fn take() -> Vec<(libc::c_int, String)> {
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }
}
