//! The persisted transfer queue (`state_dir/transfers.json`): every
//! Download/Upload the CPE accepted until the ACS has acknowledged its
//! TransferComplete (A.3.3.2), plus the other things that must happen
//! "later" and survive a restart or power loss — the accepted
//! [device actions](crate::device_actions) (scheduled Informs A.4.1.2, a
//! Reboot A.3.2.9 or FactoryReset A.4.1.6) and the software version a
//! package installed.
//!
//! Written atomically (temp file, fsync, rename, fsync directory) after
//! every change, before the change is acknowledged to anyone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::device_actions::DeviceActions;
use crate::soap::{Body, DownloadArgs, QueuedTransfer, TransferFault, UploadArgs};

/// A.4.1.1 Table 40: TransferList is QueuedTransferStruct[16]; more
/// unfinished transfers than that are refused.
pub const MAX_TRANSFERS: usize = 16;

/// The unknown-time value of A.2.1 (StartTime/CompleteTime "need only be
/// filled in if the download has been completed").
pub const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Download,
    Upload,
}

impl Direction {
    /// The "M <method>" event of Table 35.
    pub fn event(self) -> &'static str {
        match self {
            Direction::Download => "M Download",
            Direction::Upload => "M Upload",
        }
    }
}

/// Where a transfer is (A.4.1.1 Table 41 State 1–3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// 1 = not yet started.
    Queued,
    /// 2 = in progress (a crash leaves it here: see [`Queue::interrupted`]).
    InProgress { start_time: String },
    /// 3 = completed, TransferComplete not yet acknowledged by the ACS.
    Completed { code: u32, message: String, start_time: String, complete_time: String },
}

/// One accepted Download or Upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub direction: Direction,
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    /// Download FileSize (0 = not given).
    pub file_size: u32,
    pub target_file_name: String,
    /// Not before this time (Unix milliseconds): DelaySeconds after the request.
    pub due_ms: u64,
    pub status: Status,
}

impl Job {
    /// A just-accepted Download (queue id assigned by the queue), due
    /// DelaySeconds after `now_ms`.
    pub fn download(a: &DownloadArgs, now_ms: u64) -> Job {
        Job {
            id: 0,
            direction: Direction::Download,
            command_key: a.command_key.clone(),
            file_type: a.file_type.clone(),
            url: a.url.trim().to_string(),
            username: a.username.clone(),
            password: a.password.clone(),
            file_size: a.file_size,
            target_file_name: a.target_file_name.clone(),
            due_ms: now_ms + 1000 * u64::from(a.delay_seconds),
            status: Status::Queued,
        }
    }

    /// A just-accepted Upload, due DelaySeconds after `now_ms`.
    pub fn upload(a: &UploadArgs, now_ms: u64) -> Job {
        Job {
            id: 0,
            direction: Direction::Upload,
            command_key: a.command_key.clone(),
            file_type: a.file_type.clone(),
            url: a.url.trim().to_string(),
            username: a.username.clone(),
            password: a.password.clone(),
            file_size: 0,
            target_file_name: String::new(),
            due_ms: now_ms + 1000 * u64::from(a.delay_seconds),
            status: Status::Queued,
        }
    }
}

impl Job {
    /// The TransferComplete of a completed job (A.3.3.2 Table 36).
    pub fn transfer_complete(&self) -> Option<Body> {
        match &self.status {
            Status::Completed { code, message, start_time, complete_time } => Some(Body::TransferComplete {
                command_key: self.command_key.clone(),
                fault: TransferFault { code: *code, string: if *code == 0 { String::new() } else { message.clone() } },
                start_time: start_time.clone(),
                complete_time: complete_time.clone(),
            }),
            _ => None,
        }
    }
}

/// The version a package installed, and the `[device] software_version`
/// of the config at that time: the installed version wins over the
/// config's until the config is edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledVersion {
    pub config_version: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueData {
    pub next_id: u64,
    pub jobs: Vec<Job>,
    /// Reboot, FactoryReset and ScheduleInform accepted and not yet done
    /// (stored as top-level fields of the file).
    #[serde(flatten)]
    pub actions: DeviceActions,
    #[serde(default)]
    pub installed_version: Option<InstalledVersion>,
}

/// The queue and the file it lives in.
#[derive(Debug, Clone)]
pub struct Queue {
    path: PathBuf,
    pub data: QueueData,
}

impl Queue {
    /// Load `path`, or start empty when it does not exist.
    /// A missing file is an empty queue. The error does not name the file:
    /// the callers' errors do (it was named twice).
    pub fn load(path: &Path) -> std::io::Result<Queue> {
        let data = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QueueData::default(),
            Err(e) => return Err(e),
        };
        Ok(Queue { path: path.to_path_buf(), data })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn save(&self) -> std::io::Result<()> {
        crate::state::write_json_atomic(&self.path, &self.data)
    }

    pub fn jobs(&self) -> &[Job] {
        &self.data.jobs
    }

    pub fn job(&self, id: u64) -> Option<&Job> {
        self.data.jobs.iter().find(|j| j.id == id)
    }

    /// Whether another transfer fits (Table 40: at most 16).
    pub fn is_full(&self) -> bool {
        self.data.jobs.len() >= MAX_TRANSFERS
    }

    /// Accept a transfer (state 1). Returns its id.
    pub fn push(&mut self, mut job: Job) -> u64 {
        self.data.next_id += 1;
        job.id = self.data.next_id;
        job.status = Status::Queued;
        self.data.jobs.push(job);
        self.data.next_id
    }

    /// A.4.1.1 Table 41: every transfer not yet fully completed.
    pub fn queued_transfers(&self) -> Vec<QueuedTransfer> {
        self.data
            .jobs
            .iter()
            .map(|j| QueuedTransfer {
                command_key: j.command_key.clone(),
                state: match j.status {
                    Status::Queued => 1,
                    Status::InProgress { .. } => 2,
                    Status::Completed { .. } => 3,
                },
            })
            .take(MAX_TRANSFERS)
            .collect()
    }

    /// The first queued job due at `now` (Unix milliseconds), in acceptance order.
    pub fn next_due(&self, now: u64) -> Option<u64> {
        self.data.jobs.iter().find(|j| j.status == Status::Queued && j.due_ms <= now).map(|j| j.id)
    }

    /// The earliest time (Unix milliseconds) anything queued becomes due.
    pub fn next_wakeup(&self) -> Option<u64> {
        let jobs = self.data.jobs.iter().filter(|j| j.status == Status::Queued).map(|j| j.due_ms);
        jobs.chain(self.data.actions.next_inform_due()).min()
    }

    pub fn set_status(&mut self, id: u64, status: Status) {
        if let Some(j) = self.data.jobs.iter_mut().find(|j| j.id == id) {
            j.status = status;
        }
    }

    /// Completed jobs whose TransferComplete the ACS has not acknowledged.
    pub fn unreported(&self) -> impl Iterator<Item = &Job> {
        self.data.jobs.iter().filter(|j| matches!(j.status, Status::Completed { .. }))
    }

    /// The TransferComplete requests to send in the next session.
    pub fn transfer_complete_requests(&self) -> Vec<Body> {
        self.unreported().filter_map(Job::transfer_complete).collect()
    }

    /// The ACS acknowledged `tc` (a TransferComplete we sent): drop the job.
    /// Returns whether a job matched.
    pub fn acknowledge(&mut self, tc: &Body) -> bool {
        let before = self.data.jobs.len();
        self.data.jobs.retain(|j| j.transfer_complete().as_ref() != Some(tc));
        self.data.jobs.len() != before
    }

    /// After a restart: jobs left in progress were interrupted by a crash
    /// or power loss. They are reported as failed (A.3.3.2 FaultCode 9010
    /// download failure / 9011 upload failure), never silently dropped.
    /// Returns the ids changed.
    pub fn interrupted(&mut self, now: &str, why: impl Fn(&Job) -> String) -> Vec<u64> {
        let mut out = Vec::new();
        for j in self.data.jobs.iter_mut() {
            if let Status::InProgress { start_time } = &j.status {
                let why = why(j);
                let code = match j.direction {
                    Direction::Download => 9010,
                    Direction::Upload => 9011,
                };
                j.status = Status::Completed {
                    code,
                    message: format!("{} interrupted: {why}", if j.direction == Direction::Download { "download" } else { "upload" }),
                    start_time: start_time.clone(),
                    complete_time: now.to_string(),
                };
                out.push(j.id);
            }
        }
        out
    }

    /// Anything waiting (a transfer to run or report, a scheduled Inform,
    /// a Reboot or FactoryReset to perform).
    pub fn busy(&self) -> bool {
        !self.data.jobs.is_empty() || self.data.actions.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_actions::ScheduledInform;

    fn job(key: &str, due: u64) -> Job {
        Job {
            id: 0,
            direction: Direction::Download,
            command_key: key.into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://example/fw.pkg".into(),
            username: String::new(),
            password: String::new(),
            file_size: 0,
            target_file_name: String::new(),
            due_ms: due,
            status: Status::Completed { code: 1, message: String::new(), start_time: String::new(), complete_time: String::new() },
        }
    }

    #[test]
    fn persists_and_reloads_every_field() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("transfers.json");
        let mut q = Queue::load(&p).unwrap();
        assert!(!q.busy());
        let a = q.push(job("a", 10));
        let b = q.push(job("b", 5));
        assert_eq!((a, b), (1, 2));
        assert_eq!(q.job(a).unwrap().status, Status::Queued, "push resets the status");
        q.set_status(b, Status::InProgress { start_time: "2026-12-01T00:00:00Z".into() });
        q.data.actions.scheduled_informs.push(ScheduledInform { due_ms: 99, command_key: "si".into() });
        q.data.actions.reboot = Some("rb".into());
        q.data.installed_version = Some(InstalledVersion { config_version: "1".into(), version: "2".into() });
        q.save().unwrap();
        let back = Queue::load(&p).unwrap();
        assert_eq!(back.data, q.data);
        assert!(!p.with_extension("tmp").exists());
        // The device actions are top-level fields of the file, optional.
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(
            (v["reboot"].as_str(), v["scheduled_informs"][0]["command_key"].as_str(), v["factory_reset"].as_bool()),
            (Some("rb"), Some("si"), Some(false))
        );
        std::fs::write(d.path().join("min.json"), br#"{"next_id": 4, "jobs": []}"#).unwrap();
        let min = Queue::load(&d.path().join("min.json")).unwrap();
        assert_eq!((min.data.next_id, &min.data.actions), (4, &Default::default()));
        // Ids keep counting after a reload.
        let mut back = back;
        assert_eq!(back.push(job("c", 0)), 3);
    }

    #[test]
    fn table41_states_and_due_order() {
        let d = tempfile::tempdir().unwrap();
        let mut q = Queue::load(&d.path().join("t.json")).unwrap();
        let a = q.push(job("a", 100));
        let b = q.push(job("b", 50));
        let c = q.push(job("c", 0));
        assert_eq!(q.next_due(49), Some(c));
        assert_eq!(q.next_due(60), Some(b));
        assert_eq!(q.next_wakeup(), Some(0));
        q.set_status(c, Status::InProgress { start_time: "s".into() });
        q.set_status(b, Status::Completed { code: 0, message: String::new(), start_time: "s".into(), complete_time: "e".into() });
        let states: Vec<(String, u8)> = q.queued_transfers().into_iter().map(|t| (t.command_key, t.state)).collect();
        assert_eq!(states, vec![("a".into(), 1), ("b".into(), 3), ("c".into(), 2)]);
        assert_eq!(q.next_due(1000), Some(a));
        assert_eq!(q.next_wakeup(), Some(100));
    }

    #[test]
    fn interrupted_jobs_become_failed_transfer_completes_until_acknowledged() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.json");
        let mut q = Queue::load(&p).unwrap();
        let a = q.push(job("dl", 0));
        let mut up = job("ul", 0);
        up.direction = Direction::Upload;
        let u = q.push(up);
        let idle = q.push(job("later", 0));
        q.set_status(a, Status::InProgress { start_time: "2026-12-01T00:00:00Z".into() });
        q.set_status(u, Status::InProgress { start_time: "2026-12-01T00:00:01Z".into() });
        q.save().unwrap();
        // "Crash": reload and recover.
        let mut q = Queue::load(&p).unwrap();
        assert_eq!(q.interrupted("2026-12-01T00:01:00Z", |_| "agent restarted".to_string()), vec![a, u]);
        let tcs = q.transfer_complete_requests();
        assert_eq!(tcs.len(), 2);
        match &tcs[0] {
            Body::TransferComplete { command_key, fault, start_time, complete_time } => {
                assert_eq!(command_key, "dl");
                assert_eq!(fault.code, 9010);
                assert!(fault.string.contains("interrupted"), "{}", fault.string);
                assert_eq!(start_time, "2026-12-01T00:00:00Z");
                assert_eq!(complete_time, "2026-12-01T00:01:00Z");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&tcs[1], Body::TransferComplete { fault, .. } if fault.code == 9011));
        // The queued one is untouched and still runs.
        assert_eq!(q.job(idle).unwrap().status, Status::Queued);
        assert!(q.acknowledge(&tcs[0]));
        assert!(!q.acknowledge(&tcs[0]), "only once");
        assert_eq!(q.jobs().len(), 2);
    }

    #[test]
    fn success_has_an_empty_fault_string() {
        let d = tempfile::tempdir().unwrap();
        let mut q = Queue::load(&d.path().join("t.json")).unwrap();
        let a = q.push(job("ok", 0));
        q.set_status(a, Status::Completed { code: 0, message: "installed 2.0".into(), start_time: "s".into(), complete_time: "e".into() });
        match q.transfer_complete_requests().remove(0) {
            Body::TransferComplete { fault, .. } => assert_eq!(fault, TransferFault { code: 0, string: String::new() }),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn full_queue_and_corrupt_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.json");
        let mut q = Queue::load(&p).unwrap();
        for i in 0..MAX_TRANSFERS {
            q.push(job(&i.to_string(), 0));
        }
        assert!(q.is_full());
        std::fs::write(&p, b"{not json").unwrap();
        let e = Queue::load(&p).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("key must be a string"), "the JSON error: {e}");
    }
}
