//! Link-time options of the `cpekit` binary.
//!
//! On GNU/Linux the binary is linked with packed relative relocations
//! (`-z pack-relative-relocs`, DT_RELR): the ~10,000 R_X86_64_RELATIVE entries
//! of a position-independent executable (vtables, string slices in statics)
//! shrink from 24 octets each in `.rela.dyn` to a bitmap of a few KiB. The
//! stripped release binary goes from 6.21 to 5.97 MiB with ASLR kept (issue
//! 14: <= 6 MiB on a device); the loader does less work at start-up too.
//! GNU ld >= 2.38 and lld >= 15 know the option (older GNU ld warns and
//! ignores it); glibc >= 2.36 and musl >= 1.2.4 load the result.
//! `CPEKIT_NO_RELR=1` leaves it out (a toolchain or a C library that lacks it).

fn main() {
    println!("cargo:rerun-if-env-changed=CPEKIT_NO_RELR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("CPEKIT_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
