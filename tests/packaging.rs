//! Deployment files (issue 13): the systemd unit passes
//! `systemd-analyze verify` (Debian `systemd`, installed by `make test`),
//! the OpenWrt procd script is valid shell running the agent on the
//! installed config, and `make install` puts everything in place.

#[path = "support/xmldsig.rs"]
mod xmldsig;

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn systemd_unit_verifies() {
    let d = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(Path::new(ROOT).join("packaging/cpekit-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/cpekit agent --config /etc/cpekit/agent.toml"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    // The unit as installed, with this build's binary (verify checks it exists).
    let f = d.path().join("cpekit-agent.service");
    std::fs::write(&f, unit.replace("/usr/bin/cpekit", env!("CARGO_BIN_EXE_cpekit"))).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&f).output().expect("systemd-analyze (Debian package systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Unknown or misspelt directives are only warnings: none allowed.
    assert!(err.trim().is_empty(), "systemd-analyze verify warnings:\n{err}");
    // The check does catch mistakes.
    std::fs::write(&f, unit.replace("/usr/bin/cpekit", env!("CARGO_BIN_EXE_cpekit")).replace("ProtectHome=", "ProtectHomme=")).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&f).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectHomme"));
}

#[test]
fn openwrt_init_script() {
    let p = Path::new(ROOT).join("packaging/openwrt/cpekit-agent.init");
    let out = Command::new("sh").arg("-n").arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.starts_with("#!/bin/sh /etc/rc.common\n") && s.contains("USE_PROCD=1"));
    assert!(s.contains("procd_set_param command \"$PROG\" agent --config \"$CONFIG\""));
    assert!(s.contains("procd_set_param reload_signal HUP"));
}

#[test]
fn make_install_puts_everything_in_place() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("root");
    let run = |extra: &[&str]| {
        let out = Command::new("make")
            .current_dir(ROOT)
            .args(["-s", "--no-print-directory", "install"])
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("BIN={}", env!("CARGO_BIN_EXE_cpekit")))
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // The voucher helper is installed from beside BIN.
    xmldsig::helper();
    run(&["PREFIX=/usr"]);
    for f in [
        "usr/bin/cpekit",
        "usr/bin/cpekit-xmldsig",
        "usr/share/man/man1/cpekit-agent.1",
        "usr/share/man/man1/cpekit-agent-status.1",
        "usr/lib/cpekit/hosts-provider.py",
        "usr/share/doc/cpekit/provider-protocol.md",
        "etc/cpekit/agent.toml",
        "lib/systemd/system/cpekit-agent.service",
    ] {
        assert!(dest.join(f).is_file(), "{f} not installed");
    }
    assert!(!dest.join("etc/init.d/cpekit-agent").exists());
    let unit = std::fs::read_to_string(dest.join("lib/systemd/system/cpekit-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/cpekit agent --config /etc/cpekit/agent.toml"), "{unit}");
    // The installed config is the example, and loads.
    agent::config::AgentConfig::load(&dest.join("etc/cpekit/agent.toml")).unwrap();
    // An edited config is kept by a later install.
    std::fs::write(dest.join("etc/cpekit/agent.toml"), "# edited\n").unwrap();
    run(&["PREFIX=/usr", "OPENWRT=1"]);
    assert_eq!(std::fs::read_to_string(dest.join("etc/cpekit/agent.toml")).unwrap(), "# edited\n");
    assert!(dest.join("etc/init.d/cpekit-agent").is_file());
    // Elsewhere than /usr, the config and unit go under the prefix too, and
    // the service files name them there.
    run(&["PREFIX=/usr/local"]);
    let unit = std::fs::read_to_string(dest.join("usr/local/lib/systemd/system/cpekit-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/cpekit agent --config /usr/local/etc/cpekit/agent.toml"), "{unit}");
    assert!(dest.join("usr/local/etc/cpekit/agent.toml").is_file());
    let config = std::fs::read_to_string(dest.join("usr/local/etc/cpekit/agent.toml")).unwrap();
    assert!(config.contains("voucher_helper = \"/usr/local/bin/cpekit-xmldsig\""), "{config}");
}
