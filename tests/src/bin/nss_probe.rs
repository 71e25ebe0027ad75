//! `lanyard-nss-probe MODULE NAME`: loads an NSS module with `dlopen`, calls its
//! `_nss_lanyard_getpwnam_r` once for NAME the way glibc would, and prints what the module
//! returned: `status=<n> errno=<n>`, then ` name=<name> uid=<uid>` when it found the user.
//!
//! glibc folds NOTFOUND and UNAVAIL into one "not found" for `getent` (exit 2 for both); this
//! shows the `enum nss_status` itself (TRYAGAIN -2, UNAVAIL -1, NOTFOUND 0, SUCCESS 1). errno is
//! set to 0 before the call, so `errno=0` means the module left it alone.
//!
//! A short buffer (TRYAGAIN with ERANGE) is retried with a doubled one, as glibc does, up to
//! [`MAX_BUFFER`]. Exit status 0 whenever the module was called, whatever it answered; 2 for a
//! usage error or a module that cannot be loaded.
//!
//! Every `unsafe` of the program is in [`ffi`].

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;

const FIRST_BUFFER: usize = 1024;
const MAX_BUFFER: usize = 1 << 20;
/// `NSS_STATUS_TRYAGAIN` from `<nss.h>`.
const NSS_STATUS_TRYAGAIN: i32 = -2;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let [module, name] = args.as_slice() else {
        eprintln!("usage: lanyard-nss-probe MODULE NAME");
        return ExitCode::from(2);
    };
    // An argument from argv cannot hold a NUL byte.
    let Ok(name) = CString::new(name.clone().into_vec()) else {
        eprintln!("lanyard-nss-probe: NAME holds a NUL byte");
        return ExitCode::from(2);
    };
    let module = match ffi::Module::open(&PathBuf::from(module)) {
        Ok(module) => module,
        Err(why) => {
            eprintln!("lanyard-nss-probe: {why}");
            return ExitCode::from(2);
        }
    };
    let mut buflen = FIRST_BUFFER;
    let answer = loop {
        let answer = module.getpwnam_r(&name, buflen);
        if answer.status != NSS_STATUS_TRYAGAIN || answer.errno != libc::ERANGE || buflen >= MAX_BUFFER {
            break answer;
        }
        buflen *= 2;
    };
    match answer.found {
        Some((name, uid)) => println!("status={} errno={} name={name} uid={uid}", answer.status, answer.errno),
        None => println!("status={} errno={}", answer.status, answer.errno),
    }
    ExitCode::SUCCESS
}

/// `dlopen`, `dlsym`, the call through the symbol, and reading the filled `struct passwd`.
mod ffi {
    use std::ffi::{CStr, CString, c_char, c_int, c_void};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::NonNull;

    /// `_nss_lanyard_getpwnam_r` as `NSS_DECLARE_MODULE_FUNCTIONS` in `<nss.h>` declares it;
    /// `enum nss_status` is an `int`.
    type GetpwnamR =
        unsafe extern "C" fn(*const c_char, *mut libc::passwd, *mut c_char, libc::size_t, *mut c_int) -> c_int;

    const SYMBOL: &CStr = c"_nss_lanyard_getpwnam_r";

    /// What one call returned.
    pub struct Answer {
        pub status: c_int,
        pub errno: c_int,
        /// `pw_name` and `pw_uid` when the status is SUCCESS.
        pub found: Option<(String, u32)>,
    }

    /// A loaded module; closed on drop.
    pub struct Module {
        handle: NonNull<c_void>,
        getpwnam_r: GetpwnamR,
    }

    impl Module {
        pub fn open(path: &Path) -> Result<Module, String> {
            let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "the path holds a NUL byte")?;
            // SAFETY: `c_path` is a NUL-terminated string that outlives the call. Loading runs
            // the module's initializers; the module is ours and built for this machine.
            let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            let Some(handle) = NonNull::new(handle) else {
                return Err(format!("dlopen {}: {}", path.display(), dlerror()));
            };
            // SAFETY: `handle` came from a successful dlopen and is not closed yet; `SYMBOL` is
            // NUL-terminated.
            let symbol = unsafe { libc::dlsym(handle.as_ptr(), SYMBOL.as_ptr()) };
            if symbol.is_null() {
                let why = format!("dlsym {}: {}", SYMBOL.to_string_lossy(), dlerror());
                // SAFETY: `handle` is open, and nothing from it is used after this.
                unsafe { libc::dlclose(handle.as_ptr()) };
                return Err(why);
            }
            // SAFETY: the module exports this symbol as a function with exactly the `GetpwnamR`
            // signature (nss_module/src/ffi.rs); a non-null function address converts to a
            // function pointer of that type. It stays valid while `handle` is open, and `Module`
            // closes `handle` only on drop.
            let getpwnam_r = unsafe { std::mem::transmute::<*mut c_void, GetpwnamR>(symbol) };
            Ok(Module { handle, getpwnam_r })
        }

        /// Calls the module once with a `buflen`-byte buffer, as glibc's `getpwnam_r` would.
        pub fn getpwnam_r(&self, name: &CStr, buflen: usize) -> Answer {
            // SAFETY: an all-zero `struct passwd` is valid (null pointers and zero ids).
            let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut buffer = vec![0 as c_char; buflen];
            let mut errno: c_int = 0;
            // SAFETY: glibc's contract for this entry point holds: `name` is NUL-terminated,
            // `passwd` and `errno` are writable, `buffer` has `buflen` writable bytes; all live
            // until the call returns. The function pointer is valid (see `open`).
            let status =
                unsafe { (self.getpwnam_r)(name.as_ptr(), &mut passwd, buffer.as_mut_ptr(), buflen, &mut errno) };
            // A SUCCESS without a name is printed as no entry; the tests then fail on it.
            let found = (status == 1 && !passwd.pw_name.is_null()).then(|| {
                // SAFETY: on SUCCESS the module set `pw_name` (checked not null) to a
                // NUL-terminated string inside `buffer`, which is still alive and unchanged.
                let name = unsafe { CStr::from_ptr(passwd.pw_name) };
                (name.to_string_lossy().into_owned(), passwd.pw_uid)
            });
            Answer { status, errno, found }
        }
    }

    impl Drop for Module {
        fn drop(&mut self) {
            // SAFETY: `handle` came from a successful dlopen, is closed only here, and no
            // pointer into the module (the function pointer) is used after drop.
            unsafe { libc::dlclose(self.handle.as_ptr()) };
        }
    }

    /// The last `dlopen`/`dlsym` error as text.
    fn dlerror() -> String {
        // SAFETY: dlerror has no preconditions; the string it returns is valid until the next
        // dl* call on this thread, and it is copied before that.
        let text = unsafe { libc::dlerror() };
        if text.is_null() {
            return "unknown error".into();
        }
        // SAFETY: not null, so a NUL-terminated string owned by libdl (see above).
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    }
}
