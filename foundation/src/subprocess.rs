//! Run a command with a deadline.
//!
//! [`run`] starts the command in its own process group, feeds it its
//! standard input, collects bounded standard output and error, and kills the
//! whole group — the command and everything it started — when the deadline
//! passes. One thread does it all (`poll(2)` on non-blocking pipes): no
//! helper thread is left behind blocked on a pipe that a background process
//! of the command keeps open.
//!
//! Output beyond a limit is read and thrown away (so the command never
//! blocks on a full pipe) and reported as truncated.
//!
//! What happens when the command has exited but something it started still
//! holds its output pipes is the caller's choice ([`AfterExit`]): wait for
//! the output (a value read from a command must be complete) or give it a
//! short grace and return (diagnostics from a command that may leave a
//! daemon behind).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What to do when the command has exited while its output pipes are still
/// open (held by a process it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Keep reading until the pipes close; if that lasts past the deadline,
    /// kill the process group and fail with [`Error::Timeout`].
    WaitForOutput,
    /// Keep reading for at most this long (and not past the deadline), then
    /// return what was read; what the command left running keeps running.
    Grace(Duration),
}

/// How to run a command.
#[derive(Debug, Clone)]
pub struct Options {
    /// From the start to the deadline.
    pub timeout: Duration,
    /// Written to the standard input, which is then closed; `None`: the
    /// standard input is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Standard output kept, in bytes; `None`: `/dev/null`.
    pub stdout_limit: Option<usize>,
    /// Standard error kept, in bytes; `None`: `/dev/null`.
    pub stderr_limit: Option<usize>,
    pub after_exit: AfterExit,
}

impl Options {
    /// `timeout`, no input, no output kept, waiting for the output.
    pub fn new(timeout: Duration) -> Options {
        Options { timeout, stdin: None, stdout_limit: None, stderr_limit: None, after_exit: AfterExit::WaitForOutput }
    }
}

/// A command that ran to its end.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    /// At most the limit.
    pub stdout: Vec<u8>,
    /// More standard output was written than the limit.
    pub stdout_truncated: bool,
    pub stderr: Vec<u8>,
    pub stderr_truncated: bool,
}

/// Why a command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the command: {0}")]
    Spawn(#[source] io::Error),
    /// The deadline passed; the process group was killed.
    #[error("did not finish within {0:?} and was killed")]
    Timeout(Duration),
    /// Waiting for the command or servicing its pipes failed; the process
    /// group was killed.
    #[error("waiting for the command: {0}")]
    Wait(#[source] io::Error),
}

/// Run `cmd` (its program, arguments, environment and working directory as
/// the caller set them; standard streams and process group are set here).
pub fn run(cmd: &mut Command, opts: &Options) -> Result<Output, Error> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd
        .stdin(piped(opts.stdin.is_some()))
        .stdout(piped(opts.stdout_limit.is_some()))
        .stderr(piped(opts.stderr_limit.is_some()))
        // Its own process group (the child is its leader), so that a
        // timeout kills whatever the command started too.
        .process_group(0)
        .spawn()
        .map_err(Error::Spawn)?;
    let mut group = Group { child: &mut child, reaped: false };
    match group.service(opts, deadline) {
        Ok(out) => Ok(out),
        Err(e) => {
            group.kill();
            Err(match e {
                Failure::Timeout => Error::Timeout(opts.timeout),
                Failure::Io(e) => Error::Wait(e),
            })
        }
    }
}

enum Failure {
    Timeout,
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// One output pipe being drained.
struct Sink<R> {
    pipe: Option<R>,
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl<R: Read + AsRawFd> Sink<R> {
    fn new(pipe: Option<R>, limit: Option<usize>) -> io::Result<Self> {
        if let Some(p) = &pipe {
            set_nonblocking(p.as_raw_fd())?;
        }
        Ok(Sink { pipe, kept: Vec::new(), limit: limit.unwrap_or(0), truncated: false })
    }

    fn fd(&self) -> Option<RawFd> {
        self.pipe.as_ref().map(|p| p.as_raw_fd())
    }

    /// Read what is there; close the pipe at its end.
    fn drain(&mut self) -> io::Result<()> {
        let Some(p) = self.pipe.as_mut() else { return Ok(()) };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match p.read(&mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return Ok(());
                }
                Ok(n) => {
                    let room = self.limit - self.kept.len();
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                    self.truncated |= n > room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The child, killed with its group unless it was reaped normally.
struct Group<'a> {
    child: &'a mut Child,
    reaped: bool,
}

impl Group<'_> {
    fn service(&mut self, opts: &Options, deadline: Instant) -> Result<Output, Failure> {
        let mut stdin = self.child.stdin.take();
        if let Some(p) = &stdin {
            set_nonblocking(p.as_raw_fd())?;
        }
        let input = opts.stdin.as_deref().unwrap_or_default();
        let mut written = 0;
        let mut out = Sink::new(self.child.stdout.take(), opts.stdout_limit)?;
        let mut err = Sink::new(self.child.stderr.take(), opts.stderr_limit)?;
        let mut status: Option<(ExitStatus, Instant)> = None;
        // Exit is noticed by polling waitpid; the pause grows from 1 ms so
        // that quick commands return quickly, up to 20 ms.
        let mut pause = Duration::from_millis(1);
        loop {
            if stdin.is_some() && written >= input.len() {
                stdin = None; // EOF for the command
            }
            if status.is_none() {
                if let Some(s) = self.child.try_wait()? {
                    self.reaped = true;
                    status = Some((s, Instant::now()));
                }
            }
            let now = Instant::now();
            if let Some((s, exited)) = status {
                if out.pipe.is_none() && err.pipe.is_none() {
                    return Ok(Output { status: s, stdout: out.kept, stdout_truncated: out.truncated, stderr: err.kept, stderr_truncated: err.truncated });
                }
                let give_up = match opts.after_exit {
                    AfterExit::WaitForOutput => None,
                    AfterExit::Grace(g) => Some((exited + g).min(deadline)),
                };
                if give_up.is_some_and(|t| now >= t) {
                    return Ok(Output { status: s, stdout: out.kept, stdout_truncated: out.truncated, stderr: err.kept, stderr_truncated: err.truncated });
                }
            }
            if now >= deadline {
                return Err(Failure::Timeout);
            }
            let mut fds = Vec::with_capacity(3);
            for fd in [out.fd(), err.fd()].into_iter().flatten() {
                fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
            }
            if let Some(p) = &stdin {
                fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLOUT, revents: 0 });
            }
            // Running: wake up to check for its exit. Exited: only the
            // pipes (and the grace) are left to wait for.
            let wait = match (status, opts.after_exit) {
                (None, _) => pause,
                (Some((_, exited)), AfterExit::Grace(g)) => (exited + g).saturating_duration_since(now),
                (Some(_), AfterExit::WaitForOutput) => Duration::MAX,
            };
            let wait = wait.min(deadline - now);
            poll(&mut fds, wait)?;
            pause = (pause * 2).min(Duration::from_millis(20));
            out.drain()?;
            err.drain()?;
            if let Some(p) = stdin.as_mut() {
                match p.write(&input[written..]) {
                    Ok(n) => written += n,
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                    // The command does not read its input (EPIPE): its business.
                    Err(_) => stdin = None,
                }
            }
        }
    }

    fn kill(&mut self) {
        // SAFETY: kill(2) has no memory effects; a negative pid addresses
        // the process group the child leads. Even once the leader is reaped
        // the group id stays reserved while any member lives.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        if !self.reaped {
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on a descriptor we own; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn poll(fds: &mut [libc::pollfd], wait: Duration) -> io::Result<()> {
    let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
    // Round up so that a sub-millisecond wait does not spin.
    let ms = if Duration::from_millis(ms as u64) < wait { ms.saturating_add(1) } else { ms };
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    fn capture(timeout: Duration) -> Options {
        Options { stdout_limit: Some(1 << 16), stderr_limit: Some(1 << 16), ..Options::new(timeout) }
    }

    /// Whether `pid` is gone (no process, or a zombie: dead, not yet reaped
    /// by whoever inherited it).
    fn dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(s) => s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn killed_at_the_deadline_with_its_children() {
        let d = tempfile::tempdir().unwrap();
        let pids = d.path().join("pids");
        // The shell starts a sleeper child, records both pids, and hangs.
        let script = format!("sleep 30 & echo \"$$ $!\" > '{}'; wait", pids.display());
        let t = Instant::now();
        let e = run(&mut sh(&script), &capture(Duration::from_millis(300))).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, Error::Timeout(d) if d == Duration::from_millis(300)), "{e}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
        let text = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<u32> = text.split_whitespace().map(|p| p.parse().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{text:?}");
        // The sleeper was reparented when the shell died; whoever reaps it
        // may take a moment.
        let t = Instant::now();
        while !pids.iter().all(|p| dead(*p)) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(dead(pids[0]), "the shell was killed");
        assert!(dead(pids[1]), "its child sleeper was killed with the group");
    }

    #[test]
    fn output_input_and_status() {
        let mut opts = capture(Duration::from_secs(10));
        opts.stdin = Some(b"value on stdin".to_vec());
        let o = run(&mut sh("cat; echo oops >&2; exit 3"), &opts).unwrap();
        assert_eq!(o.stdout, b"value on stdin");
        assert_eq!(o.stderr, b"oops\n");
        assert_eq!(o.status.code(), Some(3));
        assert!(!o.stdout_truncated && !o.stderr_truncated);
        // Environment and arguments are the caller's.
        let o = run(sh("echo \"$X $0\"").arg("zero").env("X", "y"), &capture(Duration::from_secs(10))).unwrap();
        assert_eq!(o.stdout, b"y zero\n");
        assert!(o.status.success());
        // Input larger than a pipe buffer, to a command that reads it all.
        let big = vec![b'x'; 1 << 20];
        let o = run(&mut sh("wc -c"), &Options { stdin: Some(big), ..capture(Duration::from_secs(10)) }).unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1048576");
        // A command that does not read its input is not disturbed by it.
        let o = run(&mut sh("exit 0"), &Options { stdin: Some(vec![0; 1 << 20]), ..capture(Duration::from_secs(10)) }).unwrap();
        assert!(o.status.success());
    }

    #[test]
    fn output_is_bounded() {
        let opts = Options { stdout_limit: Some(100), stderr_limit: Some(10), ..Options::new(Duration::from_secs(10)) };
        let o = run(&mut sh("head -c 300000 /dev/zero; echo 0123456789abcdef >&2"), &opts).unwrap();
        assert_eq!(o.stdout.len(), 100);
        assert!(o.stdout_truncated, "the rest was drained, not kept");
        assert_eq!(o.stderr, b"0123456789");
        assert!(o.stderr_truncated);
        assert!(o.status.success(), "the command was never blocked on a full pipe");
        // Exactly at the limit: not truncated.
        let o = run(&mut sh("printf 1234"), &Options { stdout_limit: Some(4), ..Options::new(Duration::from_secs(10)) }).unwrap();
        assert_eq!((o.stdout.as_slice(), o.stdout_truncated), (&b"1234"[..], false));
    }

    #[test]
    fn a_background_process_holding_the_output() {
        // WaitForOutput: the value is not complete until the pipe closes;
        // past the deadline the group (with the leftover) is killed.
        let t = Instant::now();
        let e = run(&mut sh("echo X; sleep 30 &"), &capture(Duration::from_millis(300))).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // Grace: return shortly after the exit with what was read.
        let t = Instant::now();
        let opts = Options { after_exit: AfterExit::Grace(Duration::from_millis(200)), ..capture(Duration::from_secs(20)) };
        let o = run(&mut sh("echo X; echo E >&2; sleep 3 &"), &opts).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!((o.stdout.as_slice(), o.stderr.as_slice()), (&b"X\n"[..], &b"E\n"[..]));
        assert!(o.status.success());
        // With no output kept, nothing is held open and the exit is enough.
        let t = Instant::now();
        run(&mut sh("sleep 3 & exit 0"), &Options::new(Duration::from_secs(20))).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn spawn_failure() {
        let e = run(&mut Command::new("/nonexistent/cmd"), &Options::new(Duration::from_secs(1))).unwrap_err();
        assert!(matches!(&e, Error::Spawn(io) if io.kind() == io::ErrorKind::NotFound), "{e}");
    }
}
