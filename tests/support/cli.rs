//! What the command-line tests share: the repository, the TEST keys, the
//! `cpekit` binary under test and the outside tool they check against.
//! Included on its own (`#[path = "support/cli.rs"] mod cli;`) by tests
//! that need nothing else of `support`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command as Proc, Output};

use assert_cmd::Command;

/// The repository (the root package's directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository by its relative path, as an argument.
pub fn repo_file(rel: &str) -> String {
    repo().join(rel).display().to_string()
}

/// A TEST key or certificate of `testdata/keys` (made by `testdata/gen-keys.sh`).
pub fn key(name: &str) -> String {
    repo().join("testdata/keys").join(name).display().to_string()
}

/// The `cpekit` binary built for these tests.
pub fn cpekit() -> Command {
    Command::cargo_bin("cpekit").unwrap()
}

/// Whether the tests run as root (CI does; owner checks need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run the `openssl` CLI.
pub fn openssl(args: &[&str]) -> Output {
    Proc::new("openssl").args(args).output().expect("openssl must be installed (make test installs it)")
}

/// Run the `openssl` CLI, which must succeed.
pub fn openssl_ok(args: &[&str]) -> Output {
    let out = openssl(args);
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}
