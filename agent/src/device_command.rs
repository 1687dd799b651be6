//! Commands configured to act on the device (`[agent] vendor_config_command`,
//! `reboot_command`, `factory_reset_command`): run with a deadline, killed
//! with their process group when it passes.

use std::time::{Duration, Instant};

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
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = argv.split_first() else { return Err("empty command".into()) };
    let mut child = std::process::Command::new(prog)
        .args(args)
        .args(extra)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // Its own process group: a timeout kills whatever it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    let mut stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 * 1024).read_to_end(&mut out);
        }
        let _ = tx.send(out);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: kill(2) on the child's own process group.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(format!("{prog} did not finish within {timeout:?} and was killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{prog}: {e}")),
        }
    };
    // A background process it left behind may hold stderr open: do not wait for it.
    let err = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&err);
        let err = err.trim();
        Err(format!("{prog} exited with {status}{}{err}", if err.is_empty() { "" } else { ": " }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
