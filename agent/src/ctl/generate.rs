//! `lanyardctl generate`: lanyardd.8 and lanyardctl.8 (clap_mangen) and completion scripts
//! (clap_complete) from the definitions in [`crate::cli`], for `packaging/`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell as Target;

use super::Exit;
use crate::cli::{CtlArgs, GenerateCommand, LanyarddArgs, Shell};

pub fn run(what: GenerateCommand) -> Exit {
    let result = match what {
        GenerateCommand::Man { dir } => man_pages(&dir),
        GenerateCommand::Completions { shell, dir } => completions(shell, &dir),
    };
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("generate: {e}");
            Exit::Negative
        }
    }
}

/// Writes `lanyardd.8` and `lanyardctl.8` into `dir`.
pub fn man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for command in [LanyarddArgs::command(), CtlArgs::command()] {
        let path = dir.join(format!("{}.8", command.get_name()));
        let man = clap_mangen::Man::new(command).section("8");
        let mut out = BufWriter::new(File::create(&path)?);
        man.render(&mut out)?;
    }
    Ok(())
}

/// Writes `lanyardctl`'s completion script for `shell` into `dir` (the file name each shell
/// expects: `lanyardctl.bash`, `_lanyardctl`, `lanyardctl.fish`).
pub fn completions(shell: Shell, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let target = match shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    clap_complete::generate_to(target, &mut CtlArgs::command(), "lanyardctl", dir)?;
    Ok(())
}
