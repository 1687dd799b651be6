//! `cpekit`: the command-line tool of the cpekit workspace. It builds, signs,
//! verifies and installs TR-069 Annex E signed packages (`pkgfmt`,
//! `install`), signs and verifies Annex C option vouchers (`vouchers`) and
//! runs the CWMP CPE agent (`agent`).
//!
//! The binary only parses the command line (`cli`), reads the manifest
//! format (`manifest`), formats output and decides exit statuses (`exit`);
//! the work is done by those library crates.

mod agent_cmd;
mod cli;
mod exit;
mod install_cmd;
mod keys;
mod logging;
mod man;
mod manifest;
mod package;
mod pkcs11;
mod progress;
mod signals;
mod voucher_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use foundation::ErrorKind;

use cli::{Cli, PackageCommand, TopCommand};

fn main() -> ExitCode {
    // Like other Unix tools: a closed pipe (`| head`) ends us quietly.
    // SAFETY: restoring the default disposition of one signal at start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e.format(&mut Cli::command())),
    };
    // With --json, failures are reported as JSON on stdout too.
    let json = cli::wants_json(&matches);
    let result = match cli.command {
        TopCommand::Package(cmd) => match cmd {
            PackageCommand::Build(a) => package::build::run(a),
            PackageCommand::Sign(a) => package::sign::run(a),
            PackageCommand::Verify(a) => package::verify::run(a),
            PackageCommand::Inspect(a) => package::inspect::run(a),
            PackageCommand::Dump(a) => package::dump::run(a),
            PackageCommand::Extract(a) => package::extract::run(a),
        },
        TopCommand::Install(a) => install_cmd::run(a),
        TopCommand::Voucher(cmd) => voucher_cmd::run(cmd),
        TopCommand::Agent(a) => agent_cmd::run(a),
        TopCommand::Completions { shell } => completions(&shell).map(|_| exit::SUCCESS),
        TopCommand::GenerateMan { dir } => generate_man(&dir).map(|_| exit::SUCCESS),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit::status(exit::kind_of(&e));
            // Each cause once (some library messages name their source).
            let message = foundation::error_kind::chain(e.as_ref());
            eprintln!("error: {message}");
            if json {
                println!("{}", serde_json::json!({ "ok": false, "error": message, "exit_code": code }));
            }
            ExitCode::from(code)
        }
    }
}

/// clap's verdict on the command line: help and version succeed, anything
/// else is a usage error.
fn clap_exit(e: clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(if e.use_stderr() { exit::status(ErrorKind::Usage) } else { exit::SUCCESS })
}

/// `cpekit completions SHELL`: the completion script, from the same clap
/// definitions as the man pages.
fn completions(shell: &str) -> anyhow::Result<()> {
    use clap_complete::Shell;
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        _ => Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "cpekit", &mut std::io::stdout());
    Ok(())
}

/// Man pages for `cpekit` and every visible subcommand.
pub fn generate_man(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    man::generate(Cli::command(), dir)
}
