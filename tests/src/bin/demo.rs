//! `cargo run -p lanyard-tests --bin lanyard-demo`: Lanyard working end to end, without touching
//! the host. Starts a throwaway slapd on 127.0.0.1 with sample users, starts lanyardd against it,
//! runs getent and id with the NSS module in a private mount namespace, logs alice in through
//! pam_lanyard.so with pamtester, shows `lanyardctl status` and `user`, then stops everything.
//! Needs root (for `unshare -m`) and a built workspace (`cargo build --workspace`).

use std::process::{Command, ExitCode};

use anyhow::{Result, bail};
use lanyard_tests::pam::{self, Caller, Pam};
use lanyard_tests::{
    Agent, AgentConfig, BUILD_COMMAND, HANG_GUARD, Namespace, Slapd, fixture, lanyardctl_path, lanyardd_path,
    nss_module_path, pam_module_path, run_bounded,
};

const COMMANDS: [&str; 4] = ["getent passwd alice", "id alice", "getent group developers", "getent passwd | tail -n 3"];

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("lanyard-demo: some commands failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("lanyard-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ok(false) when a demo command failed.
fn run() -> Result<bool> {
    for path in [lanyardd_path(), nss_module_path(), pam_module_path(), lanyardctl_path()] {
        if !path.is_file() {
            bail!("{} is missing: build the workspace first with `{BUILD_COMMAND}`", path.display());
        }
    }

    println!("Starting a throwaway slapd on 127.0.0.1 (per-run CA, TLS required) ...");
    let mut slapd = Slapd::start()?;
    println!(
        "  slapd pid {} at {} with {} users and {} groups under {}",
        slapd.pid(),
        slapd.uri_starttls(),
        fixture::USER_COUNT,
        fixture::GROUP_COUNT,
        fixture::BASE_DN
    );

    println!("Starting lanyardd ...");
    let mut agent = Agent::start(&AgentConfig::for_slapd(&slapd))?;
    println!("  lanyardd pid {}, config {}", agent.pid(), agent.config_path().display());

    let ns = Namespace::for_agent(&agent)?;
    println!(
        "Running commands in a private mount namespace (nsswitch: `passwd: files lanyard`, \
         `group: files lanyard`; the agent's socket on /run/lanyard/socket):"
    );
    let mut all_ok = true;
    for command in COMMANDS {
        println!("\n$ {command}");
        // Fixed demo text, run by sh inside the namespace; nothing from outside is spliced in.
        let out = ns.shell(command)?;
        print!("{}", out.stdout());
        if !out.status.success() {
            all_ok = false;
            println!("({}; stderr: {})", out.status, out.stderr().trim());
        }
    }

    // A login through pam_lanyard.so, as sshd or login would do it, with alice's password on
    // pamtester's prompt. The test pam.d holds one service that stacks the module.
    let pam = Pam::for_agent(&agent)?;
    println!(
        "\n$ pamtester {} alice authenticate acct_mgmt   (alice's directory password typed at the prompt)",
        pam::SERVICE
    );
    let out = pam.pamtester(Caller::Root, "alice", &["authenticate", "acct_mgmt"], &[fixture::ALICE.password], &[])?;
    print!("{}{}", out.stderr(), out.stdout());
    all_ok &= out.status.success();

    // What an administrator sees.
    for args in [&["status"][..], &["user", "alice"][..]] {
        println!("\n$ lanyardctl {}", args.join(" "));
        let out = run_bounded(
            Command::new(lanyardctl_path())
                .arg("--socket")
                .arg(agent.socket())
                .arg("--config")
                .arg(agent.config_path())
                .args(args),
            "lanyardctl",
            HANG_GUARD,
        )?;
        print!("{}", out.stdout());
        all_ok &= out.status.success();
    }

    println!("\nStopping lanyardd and slapd.");
    drop((ns, pam));
    agent.stop()?;
    slapd.stop()?;
    if !all_ok {
        println!("lanyardd log:\n{}", agent.log());
    }
    Ok(all_ok)
}
