//! A stuck agent (stopped with SIGSTOP, or wedged) accepts connections and never answers, so
//! each lookup waits the whole reply deadline. One such wait is unavoidable; a hundred in a row
//! (`ls -l` of a directory of files owned by directory users) would be minutes. After a reply
//! times out, this process gives the agent a short deadline for a while; the first answer ends
//! that. The agent answers within its own budget (5 s, below the 7 s reply deadline), so a
//! timed-out reply means a stuck agent, not a slow directory.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanyard_proto::Deadlines;

/// How long a process keeps the short deadline after a reply timed out.
const SUSPICION: Duration = Duration::from_secs(30);
/// The reply deadline while the agent is suspected stuck.
const SHORT_REPLY: Duration = Duration::from_millis(250);

/// Milliseconds since [`epoch`] until which the agent is suspected stuck; 0: not suspected.
static SUSPECTED_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The deadlines for the next request.
pub fn deadlines() -> Deadlines {
    let suspected = SUSPECTED_UNTIL_MS.load(Ordering::Relaxed);
    if suspected != 0 && now_ms() < suspected {
        Deadlines { reply: SHORT_REPLY, ..Deadlines::default() }
    } else {
        Deadlines::default()
    }
}

/// A reply timed out: suspect the agent for a while.
pub fn timed_out() {
    let until = now_ms().saturating_add(SUSPICION.as_millis() as u64).max(1);
    SUSPECTED_UNTIL_MS.store(until, Ordering::Relaxed);
}

/// The agent answered: trust it again.
pub fn answered() {
    SUSPECTED_UNTIL_MS.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_shortens_the_next_deadlines_until_the_agent_answers() {
        answered();
        assert_eq!(deadlines(), Deadlines::default());
        timed_out();
        assert_eq!(deadlines().reply, SHORT_REPLY);
        assert_eq!(deadlines().connect, Deadlines::default().connect);
        answered();
        assert_eq!(deadlines(), Deadlines::default());
    }
}
