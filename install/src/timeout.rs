//! E.4.7 timeouts and the Figure 9 download state model, sans-IO with an
//! injectable clock.
//!
//! Figure 9: a download starts in the Initial state. A file command
//! (Extract, Add, Move, Remove) with the Unsafe flag clear moves Initial to
//! Recoverable; one with the Unsafe flag set, or Format File System, moves
//! Initial or Recoverable to Unrecoverable; End completes the install.
//! Table 73: Initial Timeout and Initial Activity Timeout apply only in the
//! Initial state (the activity timeout is infinite elsewhere); Recoverable
//! and Unrecoverable Timeout in their states. All are measured from the
//! start of the download except the activity timeout (from the last data).
//! A value of 0, or an absent command, means infinite.

use std::time::{Duration, Instant};

use pkgfmt::{Command, CommandList};

/// Source of the current time (tests inject a fake one).
pub trait Clock {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Figure 9 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    Initial,
    Recoverable,
    Unrecoverable,
    Complete,
}

/// The four Table 72 values (None = infinite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub initial: Option<Duration>,
    pub initial_activity: Option<Duration>,
    pub recoverable: Option<Duration>,
    pub unrecoverable: Option<Duration>,
}

impl Timeouts {
    /// Read the timeout commands of a list (the last of each kind wins).
    pub fn from_commands(list: &CommandList) -> Timeouts {
        let d = |s: u32| (s != 0).then(|| Duration::from_secs(s as u64));
        let mut t = Timeouts::default();
        for c in &list.commands {
            match c {
                Command::InitialTimeout(s) => t.initial = d(*s),
                Command::InitialActivityTimeout(s) => t.initial_activity = d(*s),
                Command::RecoverableTimeout(s) => t.recoverable = d(*s),
                Command::UnrecoverableTimeout(s) => t.unrecoverable = d(*s),
                Command::End => break,
                _ => {}
            }
        }
        t
    }
}

/// Which timeout expired, and in which state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} timeout of {limit:?} expired in the {state:?} state (E.4.7)")]
pub struct TimeoutExpired {
    pub which: &'static str,
    pub limit: Duration,
    pub state: DownloadState,
}

/// Tracks one download against its timeouts.
#[derive(Debug, Clone)]
pub struct DownloadTimer {
    timeouts: Timeouts,
    start: Instant,
    last_data: Instant,
    state: DownloadState,
}

impl DownloadTimer {
    pub fn new(timeouts: Timeouts, start: Instant) -> Self {
        DownloadTimer { timeouts, start, last_data: start, state: DownloadState::Initial }
    }

    pub fn state(&self) -> DownloadState {
        self.state
    }

    /// A command has been processed (Figure 9 transitions).
    pub fn on_command(&mut self, c: &Command) {
        use DownloadState::*;
        let file_cmd = c.flags().is_some();
        self.state = match (self.state, c) {
            (Complete, _) => Complete,
            (_, Command::End) => Complete,
            (_, Command::FormatFileSystem) => Unrecoverable,
            (_, c) if file_cmd && c.is_unsafe() => Unrecoverable,
            (Initial, _) if file_cmd => Recoverable,
            (s, _) => s,
        };
    }

    /// All commands done and all data in: the install is complete.
    pub fn complete(&mut self) {
        self.state = DownloadState::Complete;
    }

    /// Package data arrived at `now`.
    pub fn on_data(&mut self, now: Instant) {
        self.last_data = now;
    }

    /// Has a timeout for the current state expired at `now`?
    pub fn check(&self, now: Instant) -> Result<(), TimeoutExpired> {
        let since_start = now.saturating_duration_since(self.start);
        let over = |which, limit: Option<Duration>, elapsed: Duration| match limit {
            Some(l) if elapsed > l => Err(TimeoutExpired { which, limit: l, state: self.state }),
            _ => Ok(()),
        };
        match self.state {
            DownloadState::Initial => {
                over("Initial", self.timeouts.initial, since_start)?;
                over("Initial Activity", self.timeouts.initial_activity, now.saturating_duration_since(self.last_data))
            }
            DownloadState::Recoverable => over("Recoverable", self.timeouts.recoverable, since_start),
            DownloadState::Unrecoverable => over("Unrecoverable", self.timeouts.unrecoverable, since_start),
            DownloadState::Complete => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkgfmt::{FileCommand, RemoveCommand};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn t() -> Timeouts {
        Timeouts { initial: Some(secs(100)), initial_activity: Some(secs(10)), recoverable: Some(secs(200)), unrecoverable: None }
    }

    fn file(flags: u32) -> Command {
        Command::ExtractFile(FileCommand { flags, path: "/a".into(), sha1: [0; 20], file_offset: 0, file_length: 0, metadata: None })
    }

    #[test]
    fn initial_state_uses_initial_and_activity_timeouts() {
        let t0 = Instant::now();
        let mut d = DownloadTimer::new(t(), t0);
        assert!(d.check(t0 + secs(10)).is_ok());
        let e = d.check(t0 + secs(11)).unwrap_err();
        assert_eq!(e.which, "Initial Activity");
        d.on_data(t0 + secs(95));
        assert!(d.check(t0 + secs(100)).is_ok());
        assert_eq!(d.check(t0 + secs(101)).unwrap_err().which, "Initial");
    }

    #[test]
    fn figure_9_transitions() {
        let t0 = Instant::now();
        let mut d = DownloadTimer::new(t(), t0);
        d.on_command(&Command::Version("1".into()));
        assert_eq!(d.state(), DownloadState::Initial);
        d.on_command(&Command::RemoveFile(RemoveCommand { flags: 0, path: "/x".into() }));
        assert_eq!(d.state(), DownloadState::Recoverable);
        // No activity timeout outside Initial; recoverable from start.
        assert!(d.check(t0 + secs(150)).is_ok());
        assert_eq!(d.check(t0 + secs(201)).unwrap_err().which, "Recoverable");
        d.on_command(&file(1));
        assert_eq!(d.state(), DownloadState::Unrecoverable);
        assert!(d.check(t0 + secs(100_000)).is_ok(), "unrecoverable timeout absent = infinite");
        // Unrecoverable never goes back.
        d.on_command(&file(0));
        assert_eq!(d.state(), DownloadState::Unrecoverable);
        d.on_command(&Command::End);
        assert_eq!(d.state(), DownloadState::Complete);

        let mut f = DownloadTimer::new(t(), t0);
        f.on_command(&Command::FormatFileSystem);
        assert_eq!(f.state(), DownloadState::Unrecoverable);
    }

    #[test]
    fn zero_means_infinite() {
        let l = CommandList::new(vec![Command::InitialTimeout(0), Command::RecoverableTimeout(5)]);
        let t = Timeouts::from_commands(&l);
        assert_eq!(t.initial, None);
        assert_eq!(t.recoverable, Some(secs(5)));
    }
}
