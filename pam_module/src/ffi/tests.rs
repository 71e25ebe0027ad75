//! The unsafe helpers on memory the test allocates itself, and the shims on null pointers.
//! libpam itself drives the entry points in `tests/libpam.rs`.

use super::*;

/// A malloc'ed copy of `text`, as a conversation function returns it.
fn malloced(text: &CStr) -> *mut c_char {
    // SAFETY: `text` is NUL-terminated; strdup returns a fresh malloc'ed copy (or null).
    let copy = unsafe { libc::strdup(text.as_ptr()) };
    assert!(!copy.is_null());
    copy
}

#[test]
fn wiping_overwrites_every_byte_of_a_password() {
    let text = malloced(c"hunter2");
    // SAFETY: `text` is our writable malloc'ed string; read back before it is freed.
    unsafe {
        wipe(text);
        assert_eq!(std::slice::from_raw_parts(text.cast::<u8>(), 8), [0; 8]);
        libc::free(text.cast());
    }
}

#[test]
fn a_response_array_is_copied_out_and_released() {
    // SAFETY: calloc returns zeroed memory for one pam_response (or null, checked).
    let responses = unsafe { libc::calloc(1, size_of::<pam_response>()) }.cast::<pam_response>();
    assert!(!responses.is_null());
    // SAFETY: `responses` points to one zeroed pam_response we own.
    unsafe { (*responses).resp = malloced(c"s3cret") };
    // SAFETY: a malloc'ed array of one response with a malloc'ed string, handed over.
    let answer = unsafe { take_response(responses) };
    assert_eq!(answer.map(|s| s.expose().to_vec()), Some(b"s3cret".to_vec()));
    // SAFETY: null is allowed.
    assert!(unsafe { take_response(ptr::null_mut()) }.is_none());
}

#[test]
fn arguments_skip_null_pointers_and_tolerate_a_null_argv() {
    let mut argv = [c"debug".as_ptr(), ptr::null(), c"socket=/x".as_ptr()];
    // SAFETY: three pointers, each null or a static C string.
    let args = unsafe { arguments(3, argv.as_mut_ptr()) };
    assert_eq!(args, [&b"debug"[..], b"socket=/x"]);
    // SAFETY: a null argv and a negative count are answered without dereferencing anything.
    assert!(unsafe { arguments(2, ptr::null_mut()) }.is_empty());
    // SAFETY: as above.
    assert!(unsafe { arguments(-1, argv.as_mut_ptr()) }.is_empty());
}

#[test]
fn a_null_handle_is_a_service_error_not_a_crash() {
    // SAFETY: a null handle and no arguments: nothing is dereferenced.
    let code = unsafe { pam_sm_authenticate(ptr::null_mut(), 0, 0, ptr::null_mut()) };
    assert_eq!(code, PAM_SERVICE_ERR);
    // SAFETY: as above.
    assert_eq!(unsafe { pam_sm_setcred(ptr::null_mut(), 0, 0, ptr::null_mut()) }, PAM_SUCCESS);
    // SAFETY: as above.
    assert_eq!(unsafe { pam_sm_close_session(ptr::null_mut(), 0, 0, ptr::null_mut()) }, PAM_SUCCESS);
}
