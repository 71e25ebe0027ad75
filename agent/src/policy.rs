//! Who may ask what, from the caller's SO_PEERCRED credentials.
//!
//! Lookups are public, like `/etc/passwd`. Everything about a login (checking a password, the
//! account phase, changing a password, opening a session) is root's business, except that any
//! process may ask about the account whose uid is its own: a screen locker unlocking its
//! user's session, `passwd` run by that user.

use lanyard_proto::Passwd;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// `Err` carries the reason for the refusal, for the log and the caller.
pub fn may_act_for(caller: &Caller, user: &Passwd) -> Result<(), String> {
    if caller.is_root() || caller.uid == user.uid {
        Ok(())
    } else {
        Err(format!("uid {} may only ask about its own account, not {}", caller.uid, user.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Passwd {
        Passwd { name: "alice".into(), uid, gid: 1, gecos: String::new(), home: String::new(), shell: String::new() }
    }

    #[test]
    fn root_may_act_for_anyone_and_others_only_for_themselves() {
        assert!(may_act_for(&Caller { uid: 0, pid: None }, &user(10001)).is_ok());
        assert!(may_act_for(&Caller { uid: 10001, pid: None }, &user(10001)).is_ok());
        assert!(may_act_for(&Caller { uid: 10002, pid: None }, &user(10001)).is_err());
    }
}
