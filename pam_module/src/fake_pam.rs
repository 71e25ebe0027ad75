//! Test support: a [`Pam`] whose items, conversation answers and caller are set by the test,
//! and which records every prompt and message.

use std::collections::{HashMap, VecDeque};

use lanyard_proto::Secret;
use libc::c_int;
use pam_sys::PAM_CONV_ERR;

use crate::handle::{Notice, Pam, TextItem, Token};
use crate::status::Error;

#[derive(Debug)]
pub struct FakePam {
    /// What `pam_get_user` answers.
    pub user: Result<Vec<u8>, c_int>,
    pub items: HashMap<TextItem, String>,
    pub tokens: HashMap<Token, Secret>,
    /// Answers to prompts, in order. When they run out the conversation fails.
    pub answers: VecDeque<Result<Secret, c_int>>,
    /// Every prompt shown.
    pub prompts: Vec<String>,
    /// Every message shown.
    pub shown: Vec<(Notice, String)>,
    pub caller_uid: u32,
}

impl FakePam {
    /// `user` logging in to `sshd` from 192.0.2.7, the caller being root (as sshd is).
    pub fn new(user: &str) -> FakePam {
        let items = [(TextItem::Service, "sshd"), (TextItem::Rhost, "192.0.2.7"), (TextItem::Tty, "ssh")];
        FakePam {
            user: Ok(user.as_bytes().to_vec()),
            items: items.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
            tokens: HashMap::new(),
            answers: VecDeque::new(),
            prompts: Vec::new(),
            shown: Vec::new(),
            caller_uid: 0,
        }
    }

    /// The conversation will answer these, in order.
    pub fn answering(mut self, answers: &[&str]) -> FakePam {
        self.answers.extend(answers.iter().map(|a| Ok(Secret::new(a.as_bytes().to_vec()))));
        self
    }

    pub fn with_token(mut self, token: Token, value: &str) -> FakePam {
        self.tokens.insert(token, Secret::new(value.as_bytes().to_vec()));
        self
    }

    pub fn called_by(mut self, uid: u32) -> FakePam {
        self.caller_uid = uid;
        self
    }

    /// A token's value as text, for assertions.
    pub fn token_text(&self, token: Token) -> Option<String> {
        self.tokens.get(&token).map(|s| String::from_utf8(s.expose().to_vec()).unwrap())
    }
}

impl Pam for FakePam {
    fn user(&mut self) -> Result<Vec<u8>, Error> {
        self.user.clone().map_err(Error::Pam)
    }

    fn text(&self, item: TextItem) -> Option<String> {
        self.items.get(&item).cloned()
    }

    fn token(&self, token: Token) -> Result<Option<Secret>, Error> {
        Ok(self.tokens.get(&token).cloned())
    }

    fn set_token(&mut self, token: Token, value: &Secret) -> Result<(), Error> {
        self.tokens.insert(token, value.clone());
        Ok(())
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<Secret, Error> {
        self.prompts.push(prompt.to_owned());
        self.answers.pop_front().unwrap_or(Err(PAM_CONV_ERR)).map_err(Error::Pam)
    }

    fn show(&mut self, notice: Notice, text: &str) -> Result<(), Error> {
        self.shown.push((notice, text.to_owned()));
        Ok(())
    }

    fn caller_uid(&self) -> u32 {
        self.caller_uid
    }
}
