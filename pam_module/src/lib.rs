//! `pam_lanyard.so`: logins through lanyardd.
//!
//! Not built yet: this crate holds the workspace place that issue #3 ("Log in through PAM")
//! fills with `pam_sm_*` entry points. It exports no PAM symbols, so a PAM stack that names it
//! fails to load the module rather than trusting an answer nobody computed.
