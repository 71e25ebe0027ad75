//! Config parsing: any text is a config or a `ConfigError`, never a panic.
#![no_main]

use std::path::Path;

use lanyard_agent::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = Config::parse(Path::new("fuzz.toml"), text);
});
