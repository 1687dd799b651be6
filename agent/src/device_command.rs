//! Commands configured to act on the device (`[agent] vendor_config_command`,
//! `reboot_command`, `factory_reset_command`): run through
//! [`foundation::subprocess`] with a deadline, killed with their process
//! group when it passes.

use std::time::Duration;

/// How long a configured command (vendor handler, reboot, factory reset
/// hook) may run before it is killed with its process group.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Run a configured command (argv), with extra arguments and environment;
/// a non-zero exit (or running past [`COMMAND_TIMEOUT`]) is an error
/// carrying its stderr.
pub fn run_command(argv: &[String], extra: &[&std::ffi::OsStr], envs: &[(&str, String)]) -> Result<(), String> {
    run_command_for(argv, extra, envs, COMMAND_TIMEOUT)
}

fn run_command_for(argv: &[String], extra: &[&std::ffi::OsStr], envs: &[(&str, String)], timeout: Duration) -> Result<(), String> {
    use foundation::subprocess::{self, AfterExit, Options};
    let Some((prog, args)) = argv.split_first() else { return Err("empty command".into()) };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).args(extra).envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    // Only stderr is kept, for the message. A background process it left
    // behind may hold stderr open: do not wait for it more than a second.
    let opts = Options { stderr_limit: Some(64 * 1024), after_exit: AfterExit::Grace(Duration::from_secs(1)), ..Options::new(timeout) };
    let out = subprocess::run(&mut cmd, &opts).map_err(|e| match e {
        subprocess::Error::Timeout(_) => format!("{prog} did not finish within {timeout:?} and was killed"),
        subprocess::Error::Spawn(e) | subprocess::Error::Wait(e) => format!("{prog}: {e}"),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        Err(format!("{prog} exited with {}{}{err}", out.status, if err.is_empty() { "" } else { ": " }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn commands_report_stderr_and_time_out() {
        let sh = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        assert!(run_command_for(&sh("exit 0"), &[], &[], Duration::from_secs(5)).is_ok());
        let e = run_command_for(&sh("echo \"bad line 3\" >&2; exit 4"), &[], &[], Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("bad line 3") && e.contains('4'), "{e}");
        let t = Instant::now();
        // The grandchild holding stderr open is killed with the group.
        let e = run_command_for(&sh("sleep 30 & sleep 30"), &[], &[], Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // A daemon left behind holding stderr does not block the caller.
        let t = Instant::now();
        run_command_for(&sh("sleep 5 & exit 0"), &[], &[], Duration::from_secs(10)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let e = run_command_for(&["/nonexistent/cmd".to_string()], &[], &[], Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("/nonexistent/cmd"), "{e}");
        // Extra arguments and environment reach the command (`sh -c` makes
        // the first extra argument $0).
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("o");
        run_command_for(&sh("echo \"$CPEKIT_X\" > \"$0\""), &[out.as_os_str()], &[("CPEKIT_X", "y".into())], Duration::from_secs(5)).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "y\n");
    }
}
