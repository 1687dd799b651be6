//! The simulator's figures: a session-latency histogram that merges across
//! shards, the [`Summary`] every shard prints as JSON, and [`merge`] for
//! `cpekit agent simulate report *.json`.

use serde::{Deserialize, Serialize};

/// Sub-buckets per power of two: latencies are kept to within 1/32 (3 %).
const SUB: u32 = 32;

/// A log-linear histogram of latencies in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// (bucket, count), buckets ascending, no zero counts.
    pub buckets: Vec<(u32, u64)>,
    #[serde(skip)]
    dense: Vec<u64>,
}

fn bucket_of(us: u64) -> u32 {
    let us = us.max(1);
    let log = 63 - us.leading_zeros();
    if log < 5 {
        return us as u32; // exact below 32 us
    }
    let sub = ((us >> (log - 5)) as u32) & (SUB - 1);
    (log - 4) * SUB + sub
}

/// The smallest value of a bucket.
fn bucket_low(b: u32) -> u64 {
    if b < SUB {
        return u64::from(b);
    }
    let log = b / SUB + 4;
    let sub = u64::from(b % SUB);
    (1u64 << log) + (sub << (log - 5))
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        let b = bucket_of(us) as usize;
        if self.dense.len() <= b {
            self.dense.resize(b + 1, 0);
        }
        self.dense[b] += 1;
    }

    /// Fold the dense counts into `buckets` (before serialising or reading).
    fn settle(&mut self) {
        if self.dense.is_empty() {
            return;
        }
        let mut all: Vec<u64> = Vec::new();
        for &(b, c) in &self.buckets {
            if all.len() <= b as usize {
                all.resize(b as usize + 1, 0);
            }
            all[b as usize] += c;
        }
        for (b, &c) in self.dense.iter().enumerate() {
            if all.len() <= b {
                all.resize(b + 1, 0);
            }
            all[b] += c;
        }
        self.dense.clear();
        self.buckets = all.into_iter().enumerate().filter(|(_, c)| *c > 0).map(|(b, c)| (b as u32, c)).collect();
    }

    pub fn add(&mut self, other: &Histogram) {
        self.settle();
        let mut o = other.clone();
        o.settle();
        for (b, c) in o.buckets {
            self.record_n(b, c);
        }
        self.settle();
    }

    fn record_n(&mut self, b: u32, n: u64) {
        if self.dense.len() <= b as usize {
            self.dense.resize(b as usize + 1, 0);
        }
        self.dense[b as usize] += n;
    }

    pub fn count(&mut self) -> u64 {
        self.settle();
        self.buckets.iter().map(|(_, c)| c).sum()
    }

    /// The `p` quantile in milliseconds (the low end of its bucket).
    pub fn quantile_ms(&mut self, p: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        let rank = ((n as f64 - 1.0) * p).round() as u64;
        let mut seen = 0;
        for &(b, c) in &self.buckets {
            seen += c;
            if seen > rank {
                return bucket_low(b) as f64 / 1000.0;
            }
        }
        0.0
    }

    pub fn take(&mut self) -> Histogram {
        self.settle();
        std::mem::take(self)
    }

    /// The histogram ready to serialise.
    pub fn settled(mut self) -> Histogram {
        self.settle();
        self
    }
}

/// The final (or a periodic) summary of one simulator process (one shard).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// CPEs simulated (resident in memory from the start).
    pub identities: usize,
    /// "I/N" when sharded.
    #[serde(default)]
    pub shard: Option<String>,
    /// Identities (1-based indices of the serial numbers) of this shard.
    #[serde(default)]
    pub first_identity: usize,
    #[serde(default)]
    pub last_identity: usize,
    /// CPEs set up (state loaded).
    pub started: usize,
    pub start_failures: usize,
    pub sessions_ok: u64,
    pub sessions_failed: u64,
    /// Sessions whose Inform was acknowledged.
    pub informs: u64,
    /// Of those, 2 PERIODIC Informs.
    pub periodic_informs: u64,
    /// Periodic Informs started more than 1 s after they were due (the
    /// previous Inform plus PeriodicInformInterval).
    pub periodic_late: u64,
    /// Periodic Informs that were due before the end of the run, counted
    /// from each identity's first acknowledged Inform (0 without a
    /// periodic interval).
    pub periodic_expected: u64,
    /// Informs a CPE starting exactly on its planned start-up slot would
    /// have made by the end of the run: its BOOTSTRAP (or BOOT) Inform plus
    /// one per PeriodicInformInterval after it.
    pub informs_expected: u64,
    /// Connection Requests accepted (authenticated, 3.2.2).
    #[serde(default)]
    pub connection_requests: u64,
    pub periodic_interval_s: Option<u32>,
    pub elapsed_s: f64,
    pub informs_per_s: f64,
    /// Sessions (ok or failed) per second.
    #[serde(default)]
    pub sessions_per_s: f64,
    /// informs_expected per second of the run: what the schedule asked for.
    #[serde(default)]
    pub planned_sessions_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// CPU time of the whole process (user + system) and its share of one core.
    pub cpu_s: f64,
    pub cpu_percent: f64,
    pub max_rss_kib: u64,
    /// Resident memory before the CPEs were set up (shared model, code).
    #[serde(default)]
    pub rss_model_kib: u64,
    /// Resident memory at the end, every CPE idle.
    #[serde(default)]
    pub rss_end_kib: u64,
    /// (rss_end - rss_model) / identities.
    #[serde(default)]
    pub bytes_per_cpe: u64,
    /// Session latencies (microsecond buckets), for merging shards.
    #[serde(default)]
    pub latency_histogram: Histogram,
}

impl Summary {
    /// One line for stderr.
    pub fn line(&self) -> String {
        format!(
            "sim{}: {}/{} up ({} failed to start) | sessions ok {} failed {} ({:.1}/s of {:.1}/s planned) | informs {} ({:.1}/s) periodic {}{} late {} | CR {} | latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms | cpu {:.0}% rss {} MiB{}",
            self.shard.as_ref().map(|s| format!(" {s}")).unwrap_or_default(),
            self.started,
            self.identities,
            self.start_failures,
            self.sessions_ok,
            self.sessions_failed,
            self.sessions_per_s,
            self.planned_sessions_per_s,
            self.informs,
            self.informs_per_s,
            self.periodic_informs,
            if self.periodic_expected > 0 { format!("/{} due", self.periodic_expected) } else { String::new() },
            self.periodic_late,
            self.connection_requests,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_max_ms,
            self.cpu_percent,
            self.max_rss_kib / 1024,
            if self.bytes_per_cpe > 0 { format!(" ({} B/CPE idle)", self.bytes_per_cpe) } else { String::new() },
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no summaries to merge")]
    Empty,
    #[error("shards overlap: identities {0}-{1} and {2}-{3}")]
    Overlap(usize, usize, usize, usize),
}

/// Merge the summaries of the shards of one load test: counters add up,
/// latencies merge through their histograms, elapsed time is the longest
/// shard's, CPU and memory add up (one process per shard).
pub fn merge(parts: &[Summary]) -> Result<Summary, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let mut ranges: Vec<(usize, usize)> = parts.iter().map(|s| (s.first_identity, s.last_identity)).filter(|r| r.0 > 0).collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(MergeError::Overlap(w[0].0, w[0].1, w[1].0, w[1].1));
        }
    }
    let mut m = Summary { periodic_interval_s: first.periodic_interval_s, shard: Some(format!("{} merged", parts.len())), ..Summary::default() };
    m.first_identity = ranges.first().map_or(0, |r| r.0);
    m.last_identity = ranges.last().map_or(0, |r| r.1);
    for s in parts {
        m.identities += s.identities;
        m.started += s.started;
        m.start_failures += s.start_failures;
        m.sessions_ok += s.sessions_ok;
        m.sessions_failed += s.sessions_failed;
        m.informs += s.informs;
        m.periodic_informs += s.periodic_informs;
        m.periodic_late += s.periodic_late;
        m.periodic_expected += s.periodic_expected;
        m.informs_expected += s.informs_expected;
        m.connection_requests += s.connection_requests;
        m.elapsed_s = m.elapsed_s.max(s.elapsed_s);
        m.latency_max_ms = m.latency_max_ms.max(s.latency_max_ms);
        m.cpu_s += s.cpu_s;
        m.max_rss_kib += s.max_rss_kib;
        m.rss_model_kib += s.rss_model_kib;
        m.rss_end_kib += s.rss_end_kib;
        m.latency_histogram.add(&s.latency_histogram);
    }
    let e = m.elapsed_s.max(1e-9);
    m.informs_per_s = m.informs as f64 / e;
    m.sessions_per_s = (m.sessions_ok + m.sessions_failed) as f64 / e;
    m.planned_sessions_per_s = m.informs_expected as f64 / e;
    m.cpu_percent = 100.0 * m.cpu_s / e;
    m.latency_p50_ms = m.latency_histogram.quantile_ms(0.50);
    m.latency_p99_ms = m.latency_histogram.quantile_ms(0.99);
    if m.identities > 0 {
        m.bytes_per_cpe = m.rss_end_kib.saturating_sub(m.rss_model_kib) * 1024 / m.identities as u64;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [1u64, 2, 31, 32, 33, 63, 64, 100, 1000, 1_000_000, 60_000_000] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
            let low = bucket_low(b);
            assert!(low <= us && us - low <= us / 32 + 1, "{us} -> {low}");
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::default();
        for ms in 1..=100u64 {
            a.record(ms * 1000);
        }
        assert_eq!(a.count(), 100);
        let p50 = a.quantile_ms(0.5);
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        let p99 = a.quantile_ms(0.99);
        assert!((96.0..=99.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile_ms(0.99), 0.0);

        let s = |first, last, informs, h: &Histogram| Summary {
            identities: last - first + 1,
            first_identity: first,
            last_identity: last,
            informs,
            sessions_ok: informs,
            informs_expected: informs,
            elapsed_s: 10.0,
            latency_histogram: h.clone().settled(),
            ..Summary::default()
        };
        let mut b = Histogram::default();
        b.record(500_000);
        let json = serde_json::to_string(&s(1, 50, 100, &a)).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        let m = merge(&[back, s(51, 100, 1, &b)]).unwrap();
        assert_eq!((m.identities, m.informs, m.first_identity, m.last_identity), (100, 101, 1, 100));
        assert_eq!(m.latency_histogram.clone().count(), 101);
        assert!(m.latency_p99_ms >= 96.0 && m.latency_p99_ms < 500.0);
        assert!((m.informs_per_s - 10.1).abs() < 1e-9);
        assert!(matches!(merge(&[s(1, 50, 1, &a), s(50, 60, 1, &a)]), Err(MergeError::Overlap(..))));
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }
}
