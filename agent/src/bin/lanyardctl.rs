//! lanyardctl: inspect and operate the Lanyard agent. The commands live in
//! `lanyard_agent::ctl`, their definitions in `lanyard_agent::cli`.

use clap::Parser;
use lanyard_agent::cli::CtlArgs;

/// `auth-test` reads a password: freed copies are wiped, as in lanyardd.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> = zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> std::process::ExitCode {
    lanyard_agent::ctl::run(CtlArgs::parse())
}
