//! The system `ping` (iputils or BusyBox) for IPPingDiagnostics, when no
//! ICMP socket may be opened (see [`super::ping`]) or the destination is
//! IPv6. Run with a deadline through [`foundation::subprocess`]; its
//! replies are read from its output ("... time=0.045 ms" per reply).
//!
//! Arguments used: `-c` count, `-W` seconds to wait for a reply (rounded
//! up: BusyBox takes whole seconds), `-s` payload size, `-I` source
//! address, and `-Q` TOS only when DSCP is not zero (BusyBox has no `-Q`).

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use foundation::subprocess::{self, AfterExit, Options};

use super::ping::{outcome, Method, Outcome, Request, INTERVAL};

/// The `ping` program (looked up in `PATH`).
pub const PROGRAM: &str = "ping";

/// The arguments for `req` towards `target`.
pub fn arguments(target: IpAddr, req: &Request) -> Vec<String> {
    let wait_s = req.timeout.as_millis().div_ceil(1000).max(1);
    let mut a = vec!["-c".to_string(), req.repetitions.to_string(), "-W".into(), wait_s.to_string(), "-s".into(), req.data_block_size.to_string()];
    if req.dscp != 0 {
        a.extend(["-Q".into(), (u32::from(req.dscp.min(63)) << 2).to_string()]);
    }
    if let Some(src) = req.source {
        a.extend(["-I".into(), src.to_string()]);
    }
    a.push(target.to_string());
    a
}

/// Round-trip times of the replies in `ping`'s output (duplicates left out).
pub fn reply_times(output: &str) -> Vec<Duration> {
    output
        .lines()
        .filter(|l| l.contains("bytes from") && !l.contains("DUP!"))
        .filter_map(|l| {
            let t = l.split("time=").nth(1)?;
            let num: String = t.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let ms: f64 = num.parse().ok()?;
            let unit = t[num.len()..].trim_start();
            let secs = if unit.starts_with("ms") {
                ms / 1000.0
            } else if unit.starts_with("us") || unit.starts_with("µs") {
                ms / 1e6
            } else {
                ms / 1000.0
            };
            Some(Duration::from_secs_f64(secs))
        })
        .collect()
}

/// Run the system `ping`; the error says why it could not.
pub fn run(target: IpAddr, req: &Request) -> Result<Outcome, String> {
    let mut cmd = Command::new(PROGRAM);
    cmd.args(arguments(target, req)).env("LC_ALL", "C");
    // One interval per echo and the last reply's wait, plus slack.
    let timeout = INTERVAL * req.repetitions + req.timeout + Duration::from_secs(5);
    let opts =
        Options { stdout_limit: Some(1 << 20), stderr_limit: Some(4096), after_exit: AfterExit::Grace(Duration::from_millis(200)), ..Options::new(timeout) };
    let out = subprocess::run(&mut cmd, &opts).map_err(|e| format!("{PROGRAM}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let times = reply_times(&text);
    // Exit status 1: no reply (a result); anything else without replies:
    // ping itself failed (bad option, no permission).
    if times.is_empty() && out.status.code() != Some(1) {
        return Err(format!("{PROGRAM} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let success = (times.len() as u32).min(req.repetitions);
    Ok(outcome(&times[..success as usize], req.repetitions - success, Method::Command))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPUTILS: &str = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=12.5 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=13.1 ms (DUP!)

--- 127.0.0.1 ping statistics ---
3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.045/8.551/13.100/5.874 ms
";
    const BUSYBOX: &str = "PING 10.0.0.1 (10.0.0.1): 56 data bytes
64 bytes from 10.0.0.1: seq=0 ttl=64 time=1.077 ms

--- 10.0.0.1 ping statistics ---
2 packets transmitted, 1 packets received, 50% packet loss
";

    #[test]
    fn parses_iputils_and_busybox() {
        assert_eq!(reply_times(IPUTILS), vec![Duration::from_micros(45), Duration::from_micros(12500)]);
        assert_eq!(reply_times(BUSYBOX), vec![Duration::from_micros(1077)]);
        assert!(reply_times("ping: connect: Network is unreachable\n").is_empty());
    }

    #[test]
    fn arguments_for_a_request() {
        let r = Request { host: "h".into(), repetitions: 3, timeout: Duration::from_millis(1500), data_block_size: 100, dscp: 0, source: None };
        assert_eq!(arguments("127.0.0.1".parse().unwrap(), &r).join(" "), "-c 3 -W 2 -s 100 127.0.0.1");
        let r = Request { dscp: 46, source: Some("192.0.2.2".parse().unwrap()), ..r };
        assert_eq!(arguments("::1".parse().unwrap(), &r).join(" "), "-c 3 -W 2 -s 100 -Q 184 -I 192.0.2.2 ::1");
    }

    /// The real command (`make test` installs iputils-ping).
    #[test]
    fn system_ping_to_loopback() {
        let r = Request { host: "127.0.0.1".into(), repetitions: 2, timeout: Duration::from_secs(2), data_block_size: 32, dscp: 0, source: None };
        let o = run("127.0.0.1".parse().unwrap(), &r).unwrap();
        assert_eq!((o.success, o.failure, o.method), (2, 0, Method::Command));
        assert!(o.minimum_ms <= o.maximum_ms && o.maximum_ms < 1000);
        // 192.0.2.0/24 (TEST-NET-1) is not routed: one failed echo.
        let o = run("192.0.2.123".parse().unwrap(), &Request { repetitions: 1, timeout: Duration::from_millis(300), ..r.clone() });
        match o {
            Ok(o) => assert_eq!((o.success, o.failure), (0, 1)),
            // Without a default route, ping itself reports the network unreachable.
            Err(e) => assert!(e.contains("unreachable"), "{e}"),
        }
    }
}
