//! `cpekit`: a thin binary over the `pkgfmt` library crate.

mod agent_cmd;
mod cli;
mod install_cmd;
mod man;
mod manifest;
mod package;
mod progress;
mod voucher_cmd;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, PackageCommand, TopCommand};

/// Exit statuses, documented in every man page (see `cli::EXIT_STATUS`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const VERIFY_FAILED: u8 = 1;
    pub const MALFORMED: u8 = 3;
    pub const RUNTIME: u8 = 4;
    pub const REJECTED: u8 = 5;
}

fn main() -> ExitCode {
    // Like other Unix tools: a closed pipe (`| head`) ends us quietly.
    // SAFETY: restoring the default disposition of one signal at start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // With --json, failures are reported as JSON on stdout too.
    let json = matches!(
        &cli.command,
        TopCommand::Package(PackageCommand::Verify(cli::VerifyArgs { json: true, .. }))
            | TopCommand::Package(PackageCommand::Inspect(cli::InspectArgs { json: true, .. }))
            | TopCommand::Install(cli::InstallArgs { json: true, .. })
            | TopCommand::Voucher(cli::VoucherCommand::Verify(cli::VoucherVerifyArgs { json: true, .. }))
            | TopCommand::Voucher(cli::VoucherCommand::Inspect(cli::VoucherInspectArgs { json: true, .. }))
    );
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
        TopCommand::GenerateMan { dir } => generate_man(&dir).map(|_| exit::OK),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = classify(&e);
            eprintln!("error: {e:#}");
            if json {
                println!("{}", serde_json::json!({ "ok": false, "error": format!("{e:#}"), "exit_code": code }));
            }
            ExitCode::from(code)
        }
    }
}

/// Map an error chain to an exit status.
fn classify(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<voucher_cmd::VerifyFailure>() {
            return exit::VERIFY_FAILED;
        }
        if let Some(v) = cause.downcast_ref::<vouchers::VoucherError>() {
            use vouchers::VoucherError as V;
            return match v {
                V::Xml(_)
                | V::Structure(_)
                | V::Field { .. }
                | V::Base64(_)
                | V::Key(_)
                | V::Limit(_)
                | V::TooManyReferences { .. }
                | V::TooManyCertificates { .. } => exit::MALFORMED,
                V::Xmlsec(_) => exit::RUNTIME,
                _ => exit::VERIFY_FAILED,
            };
        }
        if let Some(i) = cause.downcast_ref::<install::InstallError>() {
            use install::InstallError as I;
            return match i {
                I::Rejected { .. } | I::Unsafe(_) | I::Interrupted => exit::REJECTED,
                I::Untrusted(_) => exit::VERIFY_FAILED,
                I::Package(p) => match p {
                    pkgfmt::Error::Parse(_) | pkgfmt::Error::Signature(_) | pkgfmt::Error::Build(_) => exit::MALFORMED,
                    pkgfmt::Error::Io(_) => exit::RUNTIME,
                    _ => exit::VERIFY_FAILED,
                },
                I::Timeout(_) | I::Io(_) | I::RolledBack(_) => exit::RUNTIME,
            };
        }
        if let Some(p) = cause.downcast_ref::<pkgfmt::Error>() {
            return match p {
                pkgfmt::Error::Parse(_) | pkgfmt::Error::Signature(_) | pkgfmt::Error::Build(_) => exit::MALFORMED,
                pkgfmt::Error::HashMismatch { .. }
                | pkgfmt::Error::PayloadTruncated { .. }
                | pkgfmt::Error::PayloadTooLong { .. }
                | pkgfmt::Error::Untrusted(_) => exit::VERIFY_FAILED,
                pkgfmt::Error::Io(_) => exit::RUNTIME,
            };
        }
        if cause.is::<agent::config::ConfigError>() {
            return exit::MALFORMED;
        }
        if cause.is::<pkgfmt::ParseError>() || cause.is::<pkgfmt::signature::SignatureError>() || cause.is::<manifest::ManifestError>() {
            return exit::MALFORMED;
        }
    }
    exit::RUNTIME
}

/// Man pages for `cpekit` and every visible subcommand.
pub fn generate_man(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    man::generate(Cli::command(), dir)
}
