//! Gives the cdylib the SONAME glibc loads it by. Cargo names the file `libnss_lanyard.so` and
//! sets no SONAME; the package installs it as `libnss_lanyard.so.2` and lintian (and `ldconfig`)
//! expect a library in the multiarch directory to say its own name.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_lanyard.so.2");
}
