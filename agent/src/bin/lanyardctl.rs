//! lanyardctl: inspect and operate the Lanyard agent. The commands live in
//! `lanyard_agent::ctl`, their definitions in `lanyard_agent::cli`.

use clap::Parser;
use lanyard_agent::cli::CtlArgs;

fn main() -> std::process::ExitCode {
    lanyard_agent::ctl::run(CtlArgs::parse())
}
