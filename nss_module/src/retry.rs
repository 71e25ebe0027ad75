//! glibc answers ERANGE by calling again at once with a buffer twice as large. Asking the agent
//! each time would cost one round trip per doubling (seven for a 5,000-member group from
//! glibc's first 1 KiB) and could see a different answer on each try. Instead the answer that
//! did not fit is kept for this thread's next call with the same request, briefly.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use lanyard_proto::{Request, Response};

/// glibc retries immediately; an answer older than this is not reused.
const KEEP_FOR: Duration = Duration::from_secs(1);

thread_local! {
    static KEPT: RefCell<Option<(Request, Instant, Response)>> = const { RefCell::new(None) };
}

/// The answer kept for `request` by [`keep`], if it is recent; any other kept answer is
/// dropped, so at most one is ever held.
pub fn take(request: &Request) -> Option<Response> {
    let kept = KEPT.try_with(|kept| kept.borrow_mut().take()).ok().flatten()?;
    let (kept_request, at, response) = kept;
    (kept_request == *request && at.elapsed() < KEEP_FOR).then_some(response)
}

/// Keeps `response` for the retry glibc makes after a too-small buffer.
pub fn keep(request: Request, response: Response) {
    // During thread teardown the slot may be gone: then there is simply nothing kept.
    let _ = KEPT.try_with(|kept| *kept.borrow_mut() = Some((request, Instant::now(), response)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_answer_serves_the_same_request_once() {
        keep(Request::GroupByGid(7), Response::NotFound);
        assert_eq!(take(&Request::GroupByGid(7)), Some(Response::NotFound));
        assert_eq!(take(&Request::GroupByGid(7)), None);
    }

    #[test]
    fn a_kept_answer_never_serves_another_request() {
        keep(Request::GroupByGid(7), Response::NotFound);
        assert_eq!(take(&Request::GroupByGid(8)), None);
        assert_eq!(take(&Request::GroupByGid(7)), None, "a different request drops what was kept");
    }
}
