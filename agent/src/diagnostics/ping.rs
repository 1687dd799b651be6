//! ICMP echo (RFC 792) for IPPingDiagnostics (Appendix B): as many echo
//! requests as NumberOfRepetitions, each answered within Timeout or counted
//! as failed, with the round-trip times of the answered ones.
//!
//! How the echoes are sent, in order of preference:
//! 1. an unprivileged ICMP "ping socket" (`SOCK_DGRAM`/`IPPROTO_ICMP`),
//!    allowed when the agent's group is in `net.ipv4.ping_group_range`;
//! 2. a raw ICMP socket, allowed with `CAP_NET_RAW` (an agent running as
//!    root, as on most CPEs);
//! 3. the system `ping` (iputils or BusyBox, [`super::ping_command`]),
//!    whose output is parsed; also used for IPv6 destinations.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Largest number of echoes one test sends (NumberOfRepetitions is
/// unbounded in B; a test must end).
pub const MAX_REPETITIONS: u32 = 1000;
/// Longest wait for one echo reply (Timeout is unbounded in B).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between two echo requests, as `ping` does by default.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Largest ICMP payload in an IPv4 datagram (65535 − 20 − 8).
const MAX_PAYLOAD: usize = 65507;

/// The test parameters of IPPingDiagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Host: name or address.
    pub host: String,
    pub repetitions: u32,
    /// Per echo.
    pub timeout: Duration,
    /// DataBlockSize: bytes of payload per echo.
    pub data_block_size: u32,
    /// DiffServ codepoint (sent as the IP TOS byte, DSCP << 2).
    pub dscp: u8,
    /// Source address of the interface named by Interface, if any.
    pub source: Option<IpAddr>,
}

/// How the echoes were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PingSocket,
    RawSocket,
    Command,
}

/// The result parameters of IPPingDiagnostics (times in milliseconds; all
/// zero without a successful echo, as B requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: u32,
    pub failure: u32,
    pub average_ms: u32,
    pub minimum_ms: u32,
    pub maximum_ms: u32,
    pub method: Method,
}

#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// DiagnosticsState "Error_CannotResolveHostName".
    #[error("cannot resolve {host:?}: {reason}")]
    CannotResolve { host: String, reason: String },
    #[error("no way to send ICMP echo requests: ping socket: {dgram}; raw socket: {raw}; ping command: {command}")]
    Unavailable { dgram: io::Error, raw: io::Error, command: String },
}

/// Run the test (blocking: up to repetitions × (interval or timeout)).
pub fn run(req: &Request) -> Result<Outcome, PingError> {
    let target = resolve(&req.host)?;
    let req =
        Request { repetitions: req.repetitions.clamp(1, MAX_REPETITIONS), timeout: req.timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT), ..req.clone() };
    let (dgram, raw) = match target {
        IpAddr::V4(v4) => {
            let dgram = match IcmpSocket::open(Kind::Dgram, &req) {
                Ok(s) => return Ok(s.echoes(v4, &req)),
                Err(e) => e,
            };
            let raw = match IcmpSocket::open(Kind::Raw, &req) {
                Ok(s) => return Ok(s.echoes(v4, &req)),
                Err(e) => e,
            };
            (dgram, raw)
        }
        IpAddr::V6(_) => (io::Error::other("IPv6: left to the ping command"), io::Error::other("IPv6: left to the ping command")),
    };
    super::ping_command::run(target, &req).map_err(|command| PingError::Unavailable { dgram, raw, command })
}

fn resolve(host: &str) -> Result<IpAddr, PingError> {
    let err = |reason: String| PingError::CannotResolve { host: host.to_string(), reason };
    let host = host.trim();
    if host.is_empty() {
        return Err(err("no Host given".into()));
    }
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs: Vec<SocketAddr> = (host, 0).to_socket_addrs().map_err(|e| err(e.to_string()))?.collect();
    // IPv4 first: the socket methods speak ICMPv4.
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).map(|a| a.ip()).ok_or_else(|| err("no address".into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dgram,
    Raw,
}

struct IcmpSocket {
    fd: OwnedFd,
    kind: Kind,
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

/// RFC 1071 Internet checksum.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request: type, code, checksum, identifier, sequence, payload.
pub(crate) fn echo_request(id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![ICMP_ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i % 256) as u8));
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// The ICMP message of a received packet (raw sockets deliver the IPv4
/// header too), if it is the echo reply to (`id`, `seq`) from `from`.
/// Ping sockets rewrite the identifier: `id` is not checked for them.
fn is_reply(kind: Kind, packet: &[u8], id: u16, seq: u16) -> bool {
    let icmp = match kind {
        Kind::Dgram => packet,
        Kind::Raw => {
            let Some(ihl) = packet.first().map(|b| usize::from(b & 0x0f) * 4) else { return false };
            packet.get(ihl..).unwrap_or(&[])
        }
    };
    icmp.len() >= 8
        && icmp[0] == ICMP_ECHO_REPLY
        && icmp[1] == 0
        && (kind == Kind::Dgram || u16::from_be_bytes([icmp[4], icmp[5]]) == id)
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

fn last_os_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

impl IcmpSocket {
    fn open(kind: Kind, req: &Request) -> io::Result<IcmpSocket> {
        let ty = match kind {
            Kind::Dgram => libc::SOCK_DGRAM,
            Kind::Raw => libc::SOCK_RAW,
        };
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let fd = unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
        if fd < 0 {
            return last_os_error();
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let s = IcmpSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) }, kind };
        let tos: libc::c_int = libc::c_int::from(req.dscp.min(63)) << 2;
        // SAFETY: setsockopt with a pointer to a live c_int and its size.
        if unsafe { libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_TOS, (&tos as *const libc::c_int).cast(), size_of::<libc::c_int>() as libc::socklen_t) }
            != 0
        {
            return last_os_error();
        }
        if let Some(IpAddr::V4(src)) = req.source {
            let sa = sockaddr(SocketAddrV4::new(src, 0));
            // SAFETY: bind with a live sockaddr_in and its size.
            if unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), size_of::<libc::sockaddr_in>() as libc::socklen_t) } != 0 {
                return last_os_error();
            }
        }
        Ok(s)
    }

    fn echoes(self, to: Ipv4Addr, req: &Request) -> Outcome {
        let id = (std::process::id() as u16) ^ 0x5a5a;
        let payload = (req.data_block_size as usize).clamp(1, MAX_PAYLOAD);
        let mut times = Vec::new();
        let mut failure = 0;
        for i in 0..req.repetitions {
            let started = Instant::now();
            match self.echo(to, id, i as u16, payload, req.timeout) {
                Some(rtt) => times.push(rtt),
                None => failure += 1,
            }
            if i + 1 < req.repetitions {
                std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
            }
        }
        outcome(&times, failure, if self.kind == Kind::Dgram { Method::PingSocket } else { Method::RawSocket })
    }

    /// One echo: the round-trip time, or None (no reply within `timeout`,
    /// or a send error).
    fn echo(&self, to: Ipv4Addr, id: u16, seq: u16, payload: usize, timeout: Duration) -> Option<Duration> {
        let packet = echo_request(id, seq, payload);
        let sa = sockaddr(SocketAddrV4::new(to, 0));
        let fd = self.fd.as_raw_fd();
        let sent = Instant::now();
        // SAFETY: sendto with a live buffer and sockaddr_in and their sizes.
        let n = unsafe {
            libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            tracing::debug!("ping {to}: send: {}", io::Error::last_os_error());
            return None;
        }
        let deadline = sent + timeout;
        let mut buf = vec![0u8; payload + 8 + 60];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: poll on one live pollfd.
            match unsafe { libc::poll(&mut pfd, 1, ms) } {
                0 => return None,
                r if r < 0 => {
                    if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return None;
                }
                _ => {}
            }
            let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: recvfrom into a live buffer of the given size and a live sockaddr_in.
            let n =
                unsafe { libc::recvfrom(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT, (&mut from as *mut libc::sockaddr_in).cast(), &mut len) };
            if n < 0 {
                continue;
            }
            let from_ip = Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr));
            if from_ip == to && is_reply(self.kind, &buf[..n as usize], id, seq) {
                return Some(sent.elapsed());
            }
        }
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    sa
}

/// The result parameters from the round-trip times of the answered echoes.
pub(crate) fn outcome(times: &[Duration], failure: u32, method: Method) -> Outcome {
    let ms = |d: &Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let (average_ms, minimum_ms, maximum_ms) = if times.is_empty() {
        (0, 0, 0)
    } else {
        let total: Duration = times.iter().sum();
        (ms(&(total / times.len() as u32)), times.iter().map(ms).min().unwrap_or(0), times.iter().map(ms).max().unwrap_or(0))
    };
    Outcome { success: times.len() as u32, failure, average_ms, minimum_ms, maximum_ms, method }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_echo_request() {
        // RFC 1071 section 3 example.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        let p = echo_request(0x1234, 7, 5);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(p.len(), 13);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn replies_are_matched() {
        let mut reply = echo_request(0x1234, 7, 4);
        reply[0] = ICMP_ECHO_REPLY;
        assert!(is_reply(Kind::Dgram, &reply, 0, 7), "ping sockets rewrite the identifier");
        assert!(!is_reply(Kind::Dgram, &reply, 0, 8));
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        ip.extend_from_slice(&reply);
        assert!(is_reply(Kind::Raw, &ip, 0x1234, 7));
        assert!(!is_reply(Kind::Raw, &ip, 0x1235, 7), "someone else's echo");
        // Our own request, seen by a raw socket on loopback.
        let mut own = ip.clone();
        own[20] = ICMP_ECHO_REQUEST;
        assert!(!is_reply(Kind::Raw, &own, 0x1234, 7));
        assert!(!is_reply(Kind::Raw, &ip[..24], 0x1234, 7), "truncated");
        assert!(!is_reply(Kind::Raw, &[], 0, 0));
    }

    #[test]
    fn outcome_times() {
        let o = outcome(&[Duration::from_millis(3), Duration::from_millis(9), Duration::from_micros(6500)], 2, Method::RawSocket);
        assert_eq!((o.success, o.failure, o.average_ms, o.minimum_ms, o.maximum_ms), (3, 2, 6, 3, 9));
        let none = outcome(&[], 4, Method::Command);
        assert_eq!((none.success, none.failure, none.average_ms, none.minimum_ms, none.maximum_ms), (0, 4, 0, 0, 0));
    }

    #[test]
    fn unresolvable_host() {
        let r = Request { host: "no-such-host.invalid".into(), repetitions: 1, timeout: Duration::from_secs(1), data_block_size: 8, dscp: 0, source: None };
        assert!(matches!(run(&r), Err(PingError::CannotResolve { .. })));
        assert!(matches!(run(&Request { host: " ".into(), ..r }), Err(PingError::CannotResolve { .. })));
    }
}
