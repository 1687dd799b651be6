//! The `cpekit-xmldsig` helper for the tests that sign or verify vouchers.
//!
//! `cpekit` runs the helper found beside its own executable; it is a binary
//! of another package (the only one that links libxmlsec1), so Cargo gives
//! this package no `CARGO_BIN_EXE_` for it and `cargo test -p cpekit` does
//! not build it. [`helper`] builds it (a no-op when it is up to date) into
//! the directory of the `cpekit` under test, with the same profile.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The helper beside `CARGO_BIN_EXE_cpekit`, built once per test binary.
pub fn helper() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cpekit = PathBuf::from(env!("CARGO_BIN_EXE_cpekit"));
            let dir = cpekit.parent().expect("the binary's directory");
            let target = dir.parent().expect("the target directory");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "cpekit-xmldsig", "--bin", "cpekit-xmldsig", "--manifest-path"])
                .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .arg("--target-dir")
                .arg(target);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo to build cpekit-xmldsig");
            assert!(status.success(), "building cpekit-xmldsig: {status}");
            let helper = dir.join("cpekit-xmldsig");
            assert!(helper.is_file(), "{} was not built", helper.display());
            helper
        })
        .clone()
}
