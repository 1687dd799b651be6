//! The built-in Linux provider (`[device] backend = "linux"`): the agent
//! describes the machine it runs on, with no scripting. A [`Provider`]
//! read in-process (so change notification reads it live).
//!
//! | Parameters | Source |
//! |---|---|
//! | DeviceInfo.UpTime | `/proc/uptime` (seconds since the machine booted) |
//! | DeviceInfo.DeviceLog | the last 32 KiB of `[device] device_log` (B.2.3: string(32K)) |
//! | DeviceInfo.SoftwareVersion / HardwareVersion | `[device]` keys; when empty, `/etc/os-release` (VERSION_ID, VERSION, BUILD_ID) and the device-tree model, DMI product name or machine type (set at start) |
//! | Time.CurrentLocalTime / LocalTimeZone / LocalTimeZoneName | the system clock and time zone (`TZ`, `/etc/timezone`, `/etc/localtime`) |
//! | LANDevice.1.LANEthernetInterfaceConfig.{n} | the n-th of `[device] lan_interfaces`: Enable (IFF_UP), Status, MACAddress, MaxBitRate and DuplexMode (`/sys/class/net/IF/{speed,duplex}`, else Auto), Stats from `/sys/class/net/IF/statistics` |
//! | LANDevice.1.LANHostConfigManagement.IPInterface.1 | the first LAN interface's IPv4 address and mask (getifaddrs), Enable |
//! | LANDevice.1.Hosts | the complete IPv4 neighbour entries (`/proc/net/arp`) on the LAN interfaces; a host keeps its instance number while the agent runs (by MAC address), numbers are never reused |
//! | WANDevice.1.WANCommonInterfaceConfig | `[device] wan_interface`: WANAccessType Ethernet, PhysicalLinkStatus, Layer1 rates (speed), Total* counters |
//! | WANDevice.1.WANEthernetInterfaceConfig | as a LAN interface |
//! | WANDevice.1.WANConnectionDevice.1.WANIPConnection.1 | Enable, ConnectionStatus (Connected with an IPv4 address and the link up), ExternalIPAddress, SubnetMask, DefaultGateway (`/proc/net/route`), DNSServers (`/etc/resolv.conf`), MACAddress, ConnectionType and PossibleConnectionTypes IP_Routed, Name (the interface) |
//!
//! Everything else in these objects keeps its stored value (default, or
//! the last value set). Counters are unsignedInt: the kernel's 64-bit
//! counters are reported modulo 2^32 (they wrap, as counters do).
//! Writing a value the machine supplies (e.g. an interface's Enable, the
//! time zone) is refused with 9001 Request denied: the agent does not
//! reconfigure the machine; other writable parameters are stored. The
//! instances of LANDevice.1 and WANDevice.1 are the machine's: AddObject
//! and DeleteObject there are refused with 9001.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use foundation::clock::format_date_time;

use super::provider::{Provider, ProviderError};
use super::store::Refusal;

const DI: &str = "InternetGatewayDevice.DeviceInfo.";
const TIME: &str = "InternetGatewayDevice.Time.";
/// The LAN and WAN devices the mapped interfaces appear in.
pub const LAN: &str = "InternetGatewayDevice.LANDevice.1.";
pub const WAN: &str = "InternetGatewayDevice.WANDevice.1.";
const WAN_IP: &str = "WANConnectionDevice.1.WANIPConnection.1.";
/// B.2.3 DeviceLog: string(32K).
const DEVICE_LOG_MAX: usize = 32 * 1024;
const SYS_NET: &str = "/sys/class/net";

/// What the Linux provider maps (from `[device]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxConfig {
    /// LANDevice.1.LANEthernetInterfaceConfig.1, .2, …
    pub lan_interfaces: Vec<String>,
    /// WANDevice.1.
    pub wan_interface: Option<String>,
    /// DeviceInfo.DeviceLog.
    pub device_log: Option<PathBuf>,
}

/// A Linux interface name (IFNAMSIZ − 1 bytes, no '/', not "." or "..").
pub fn valid_interface_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 15 && n != "." && n != ".." && !n.contains(['/', ' ', '\0', ':'])
}

/// The built-in Linux provider.
#[derive(Debug)]
pub struct Linux {
    cfg: LinuxConfig,
    hosts: Mutex<HostNumbers>,
}

/// Instance numbers of LAN hosts, by MAC address; never reused.
#[derive(Debug, Default)]
struct HostNumbers {
    by_mac: BTreeMap<String, u32>,
    next: u32,
}

/// One neighbour (host) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: String,
    pub device: String,
}

impl Linux {
    pub fn new(cfg: LinuxConfig) -> Linux {
        Linux { cfg, hosts: Mutex::new(HostNumbers { next: 1, ..Default::default() }) }
    }

    /// What it serves: single parameters and the mapped devices' objects.
    pub fn subtrees(&self) -> Vec<String> {
        let mut v: Vec<String> = ["UpTime", "DeviceLog"].iter().map(|p| format!("{DI}{p}")).collect();
        v.extend(["CurrentLocalTime", "LocalTimeZone", "LocalTimeZoneName"].iter().map(|p| format!("{TIME}{p}")));
        if !self.cfg.lan_interfaces.is_empty() {
            v.push(LAN.into());
        }
        if self.cfg.wan_interface.is_some() {
            v.push(WAN.into());
        }
        v
    }

    /// The hosts on the LAN interfaces, numbered (new hosts get new numbers).
    fn hosts(&self) -> Vec<(u32, Neighbour)> {
        let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        let list: Vec<Neighbour> = neighbours(&table).into_iter().filter(|n| self.cfg.lan_interfaces.contains(&n.device)).collect();
        let mut h = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        h.by_mac.retain(|m, _| list.iter().any(|n| n.mac == *m));
        let mut out = Vec::with_capacity(list.len());
        for n in list {
            let num = match h.by_mac.get(&n.mac) {
                Some(k) => *k,
                None => {
                    let k = h.next;
                    h.next = h.next.saturating_add(1);
                    h.by_mac.insert(n.mac.clone(), k);
                    k
                }
            };
            out.push((num, n));
        }
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// The value of one parameter, if the machine supplies it.
    fn value(&self, name: &str, hosts: &mut Option<Vec<(u32, Neighbour)>>) -> Option<String> {
        if let Some(p) = name.strip_prefix(DI) {
            return match p {
                "UpTime" => uptime().map(|s| s.to_string()),
                "DeviceLog" => self.cfg.device_log.as_deref().map(device_log),
                _ => None,
            };
        }
        if let Some(p) = name.strip_prefix(TIME) {
            let (offset, zone) = local_time_zone();
            return match p {
                "CurrentLocalTime" => Some(format_date_time(time::OffsetDateTime::now_utc().to_offset(offset))),
                "LocalTimeZone" => Some(format_offset(offset)),
                "LocalTimeZoneName" => zone.map(|z| z.chars().take(64).collect()),
                _ => None,
            };
        }
        if let Some(p) = name.strip_prefix(LAN) {
            if let Some(rest) = p.strip_prefix("LANEthernetInterfaceConfig.") {
                let (n, field) = rest.split_once('.')?;
                let iface = self.cfg.lan_interfaces.get(n.parse::<usize>().ok()?.checked_sub(1)?)?;
                return ethernet(iface, field, &["10", "100", "1000"]);
            }
            if let Some(field) = p.strip_prefix("LANHostConfigManagement.IPInterface.1.") {
                let iface = self.cfg.lan_interfaces.first()?;
                return match field {
                    "Enable" => Some(is_up(iface).to_string()),
                    "IPInterfaceIPAddress" => ipv4(iface).map(|(a, _)| a.to_string()),
                    "IPInterfaceSubnetMask" => ipv4(iface).map(|(_, m)| m.to_string()),
                    _ => None,
                };
            }
            if let Some(rest) = p.strip_prefix("Hosts.") {
                let hosts = hosts.get_or_insert_with(|| self.hosts());
                if rest == "HostNumberOfEntries" {
                    return Some(hosts.len().to_string());
                }
                let (n, field) = rest.strip_prefix("Host.")?.split_once('.')?;
                let n: u32 = n.parse().ok()?;
                let (_, h) = hosts.iter().find(|(k, _)| *k == n)?;
                return match field {
                    "IPAddress" => Some(h.ip.to_string()),
                    "MACAddress" => Some(h.mac.clone()),
                    "Active" => Some("true".into()),
                    "InterfaceType" => Some("Ethernet".into()),
                    _ => None,
                };
            }
            return None;
        }
        if let Some(p) = name.strip_prefix(WAN) {
            let iface = self.cfg.wan_interface.as_deref()?;
            if let Some(field) = p.strip_prefix("WANCommonInterfaceConfig.") {
                let total = |c: &str| counter(iface, c);
                return match field {
                    "WANAccessType" => Some("Ethernet".into()),
                    "PhysicalLinkStatus" => Some(if link_up(iface) { "Up" } else { "Down" }.into()),
                    "Layer1UpstreamMaxBitRate" | "Layer1DownstreamMaxBitRate" => {
                        speed_mbps(iface).map(|s| s.saturating_mul(1_000_000).min(u32::MAX as u64).to_string())
                    }
                    "TotalBytesSent" => total("tx_bytes"),
                    "TotalBytesReceived" => total("rx_bytes"),
                    "TotalPacketsSent" => total("tx_packets"),
                    "TotalPacketsReceived" => total("rx_packets"),
                    _ => None,
                };
            }
            if let Some(field) = p.strip_prefix("WANEthernetInterfaceConfig.") {
                return ethernet(iface, field, &["10", "100"]);
            }
            if let Some(field) = p.strip_prefix(WAN_IP) {
                return match field {
                    "Enable" => Some(is_up(iface).to_string()),
                    "ConnectionStatus" => Some(if link_up(iface) && ipv4(iface).is_some() { "Connected" } else { "Disconnected" }.into()),
                    "ConnectionType" | "PossibleConnectionTypes" => Some("IP_Routed".into()),
                    "Name" => Some(iface.to_string()),
                    "ExternalIPAddress" => ipv4(iface).map(|(a, _)| a.to_string()),
                    "SubnetMask" => ipv4(iface).map(|(_, m)| m.to_string()),
                    "DefaultGateway" => default_gateway(&std::fs::read_to_string("/proc/net/route").unwrap_or_default(), iface).map(|g| g.to_string()),
                    "DNSServers" => dns_servers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
                    "MACAddress" => mac(iface),
                    _ => None,
                };
            }
        }
        None
    }

    fn denied(&self, method: &'static str, message: &str) -> ProviderError {
        ProviderError::Fault { subtree: "linux".into(), method, code: 9001, message: format!("Request denied: {message}"), faults: Vec::new() }
    }
}

impl Provider for Linux {
    fn get(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut hosts = None;
        Ok(names.iter().filter_map(|n| Some((n.clone(), self.value(n, &mut hosts)?))).collect())
    }

    fn set(&self, values: &[(String, String)]) -> Result<(), ProviderError> {
        let mut hosts = None;
        match values.iter().find(|(n, _)| self.value(n, &mut hosts).is_some()) {
            Some((n, _)) => Err(ProviderError::Fault {
                subtree: "linux".into(),
                method: "set",
                code: 9003,
                message: "Invalid arguments".into(),
                faults: vec![(
                    n.clone(),
                    Refusal { code: 9001, message: "Request denied: the value comes from the machine, the agent does not change it".into() },
                )],
            }),
            // Not supplied by the machine: stored by the agent.
            None => Ok(()),
        }
    }

    fn add(&self, _table: &str) -> Result<u32, ProviderError> {
        Err(self.denied("add", "these instances are the machine's interfaces and hosts"))
    }

    fn delete(&self, _object: &str) -> Result<(), ProviderError> {
        Err(self.denied("delete", "these instances are the machine's interfaces and hosts"))
    }

    fn instances(&self, subtree: &str) -> Result<Vec<String>, ProviderError> {
        let mut v = Vec::new();
        if subtree == LAN {
            v.extend((1..=self.cfg.lan_interfaces.len()).map(|n| format!("{LAN}LANEthernetInterfaceConfig.{n}.")));
            v.push(format!("{LAN}LANHostConfigManagement.IPInterface.1."));
            v.extend(self.hosts().into_iter().map(|(n, _)| format!("{LAN}Hosts.Host.{n}.")));
        } else if subtree == WAN {
            v.push(format!("{WAN}WANConnectionDevice.1."));
            v.push(format!("{WAN}{WAN_IP}"));
        }
        Ok(v)
    }

    fn polled(&self) -> bool {
        true
    }

    fn allows_add_delete(&self, _table: &str) -> bool {
        false
    }
}

/// Seconds since boot.
pub fn uptime() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(secs.clamp(0.0, u32::MAX as f64) as u32)
}

/// The last [`DEVICE_LOG_MAX`] characters of the log file ("" if unreadable).
fn device_log(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // Up to 4 bytes per character.
    let start = len.saturating_sub(4 * DEVICE_LOG_MAX as u64);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.take(4 * DEVICE_LOG_MAX as u64).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let n = text.chars().count();
    text.chars().skip(n.saturating_sub(DEVICE_LOG_MAX)).collect()
}

fn sys(iface: &str, file: &str) -> Option<String> {
    if !valid_interface_name(iface) {
        return None;
    }
    std::fs::read_to_string(Path::new(SYS_NET).join(iface).join(file)).ok().map(|s| s.trim().to_string())
}

/// A statistics counter, modulo 2^32 (unsignedInt).
fn counter(iface: &str, name: &str) -> Option<String> {
    let v: u64 = sys(iface, &format!("statistics/{name}"))?.parse().ok()?;
    Some((v % (1u64 << 32)).to_string())
}

fn flags(iface: &str) -> Option<u32> {
    u32::from_str_radix(sys(iface, "flags")?.trim_start_matches("0x"), 16).ok()
}

fn is_up(iface: &str) -> bool {
    flags(iface).is_some_and(|f| f & libc::IFF_UP as u32 != 0)
}

/// Administratively up with a link (loopback and other interfaces without
/// carrier detection report operstate "unknown").
fn link_up(iface: &str) -> bool {
    is_up(iface) && matches!(sys(iface, "operstate").as_deref(), Some("up") | Some("unknown"))
}

fn mac(iface: &str) -> Option<String> {
    sys(iface, "address").map(|m| m.to_uppercase()).filter(|m| m.len() == 17)
}

fn speed_mbps(iface: &str) -> Option<u64> {
    sys(iface, "speed")?.parse::<i64>().ok().filter(|s| *s > 0).map(|s| s as u64)
}

/// LAN/WAN Ethernet interface parameters (`rates`: the MaxBitRate values
/// the object allows besides "Auto").
fn ethernet(iface: &str, field: &str, rates: &[&str]) -> Option<String> {
    let stat = |c: &str| counter(iface, c);
    match field {
        "Enable" => Some(is_up(iface).to_string()),
        "Status" => Some(
            if sys(iface, "flags").is_none() {
                "Error"
            } else if !is_up(iface) {
                "Disabled"
            } else if link_up(iface) {
                "Up"
            } else {
                "NoLink"
            }
            .into(),
        ),
        "MACAddress" => mac(iface),
        "MaxBitRate" => {
            let s = speed_mbps(iface).map(|s| s.to_string());
            Some(s.filter(|s| rates.contains(&s.as_str())).unwrap_or_else(|| "Auto".into()))
        }
        "DuplexMode" => Some(
            match sys(iface, "duplex").as_deref() {
                Some("full") => "Full",
                Some("half") => "Half",
                _ => "Auto",
            }
            .into(),
        ),
        "Stats.BytesSent" => stat("tx_bytes"),
        "Stats.BytesReceived" => stat("rx_bytes"),
        "Stats.PacketsSent" => stat("tx_packets"),
        "Stats.PacketsReceived" => stat("rx_packets"),
        _ => None,
    }
}

/// The first IPv4 address of `iface` and its netmask.
pub fn ipv4(iface: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr is non-null and points to a sockaddr.
        if name.to_bytes() != iface.as_bytes() || i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        let v4 = |p: *const libc::sockaddr| -> Option<Ipv4Addr> {
            // SAFETY: for AF_INET entries the addresses are sockaddr_in.
            (!p.is_null()).then(|| Ipv4Addr::from(u32::from_be(unsafe { (*(p as *const libc::sockaddr_in)).sin_addr.s_addr })))
        };
        if let Some(a) = v4(ifa.ifa_addr) {
            found = Some((a, v4(ifa.ifa_netmask).unwrap_or(Ipv4Addr::UNSPECIFIED)));
            break;
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Complete IPv4 neighbour entries of `/proc/net/arp` (flag ATF_COM).
pub fn neighbours(table: &str) -> Vec<Neighbour> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ip, flags, mac, dev) = (f.first()?, f.get(2)?, f.get(3)?, f.get(5)?);
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            if flags & 0x2 == 0 || *mac == "00:00:00:00:00:00" || mac.len() != 17 {
                return None;
            }
            Some(Neighbour { ip: ip.parse().ok()?, mac: mac.to_uppercase(), device: dev.to_string() })
        })
        .take(super::provider::MAX_INSTANCES)
        .collect()
}

/// The default route's gateway through `iface` in `/proc/net/route`.
pub fn default_gateway(routes: &str, iface: &str) -> Option<Ipv4Addr> {
    routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&iface) && f.get(1) == Some(&"00000000")).then(|| u32::from_str_radix(f.get(2)?, 16).ok().map(|g| Ipv4Addr::from(g.swap_bytes())))?
    })
}

/// The IPv4 name servers of resolv.conf, comma-separated.
pub fn dns_servers(resolv: &str) -> Option<String> {
    let v: Vec<String> = resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .map(|a| a.to_string())
        .take(3)
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

/// The system's current UTC offset and zone name.
fn local_time_zone() -> (time::UtcOffset, Option<String>) {
    let now: libc::time_t = time::OffsetDateTime::now_utc().unix_timestamp() as libc::time_t;
    // SAFETY: localtime_r writes the broken-down time into our own `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&now, &mut tm) }.is_null();
    let offset = if ok { time::UtcOffset::from_whole_seconds(tm.tm_gmtoff as i32).unwrap_or(time::UtcOffset::UTC) } else { time::UtcOffset::UTC };
    let zone = std::env::var("TZ")
        .ok()
        .map(|z| z.trim_start_matches(':').to_string())
        .filter(|z| !z.is_empty() && !z.starts_with('/'))
        .or_else(|| std::fs::read_to_string("/etc/timezone").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .or_else(|| std::fs::read_link("/etc/localtime").ok().and_then(|p| p.to_string_lossy().split("zoneinfo/").nth(1).map(str::to_string)));
    (offset, zone)
}

/// B.2.3 LocalTimeZone: "+hh:mm".
fn format_offset(o: time::UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    format!("{}{:02}:{:02}", if o.is_negative() { '-' } else { '+' }, h.unsigned_abs(), m.unsigned_abs())
}

/// The software version from `/etc/os-release`: VERSION_ID, else VERSION,
/// else BUILD_ID (string(64)).
pub fn software_version() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release")).ok()?;
    os_release_version(&text)
}

pub fn os_release_version(text: &str) -> Option<String> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .filter(|v| !v.is_empty())
    };
    field("VERSION_ID").or_else(|| field("VERSION")).or_else(|| field("BUILD_ID")).map(|v| v.chars().take(64).collect())
}

/// The hardware version: the device-tree model (embedded boards), the DMI
/// product name (PCs), else the machine type (`uname -m`).
pub fn hardware_version() -> Option<String> {
    let read =
        |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string()).filter(|s| !s.is_empty());
    read("/sys/firmware/devicetree/base/model").or_else(|| read("/sys/class/dmi/id/product_name")).or_else(machine).map(|v| v.chars().take(64).collect())
}

fn machine() -> Option<String> {
    // SAFETY: uname fills our own zeroed utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: uname's fields are NUL-terminated.
    Some(unsafe { CStr::from_ptr(u.machine.as_ptr()) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::Schema;

    fn get(l: &Linux, n: &str) -> Option<String> {
        l.get(&[n.to_string()]).unwrap().remove(n)
    }

    #[test]
    fn parsers() {
        let arp = "IP address       HW type     Flags       HW address            Mask     Device\n\
                   192.168.1.10     0x1         0x2         02:aa:bb:cc:dd:01     *        br-lan\n\
                   192.168.1.11     0x1         0x0         00:00:00:00:00:00     *        br-lan\n\
                   10.0.0.1         0x1         0x6         02:aa:bb:cc:dd:02     *        eth0\n\
                   garbage\n";
        let n = neighbours(arp);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0], Neighbour { ip: "192.168.1.10".parse().unwrap(), mac: "02:AA:BB:CC:DD:01".into(), device: "br-lan".into() });
        let routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                      eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                      eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_gateway(routes, "eth0"), Some("10.0.2.1".parse().unwrap()));
        assert_eq!(default_gateway(routes, "eth1"), None);
        assert_eq!(
            dns_servers("# x\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 198.51.100.1\nsearch lan\n").as_deref(),
            Some("192.0.2.53,198.51.100.1")
        );
        assert_eq!(dns_servers("search lan\n"), None);
        assert_eq!(os_release_version("NAME=\"Debian\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\n").as_deref(), Some("12"));
        assert_eq!(os_release_version("NAME='OpenWrt'\nVERSION='23.05.2'\nBUILD_ID='r23630'\n").as_deref(), Some("23.05.2"));
        assert_eq!(os_release_version("NAME=x\n"), None);
        assert_eq!(format_offset(time::UtcOffset::from_hms(-3, -30, 0).unwrap()), "-03:30");
        assert_eq!(format_offset(time::UtcOffset::UTC), "+00:00");
        assert!(valid_interface_name("br-lan") && !valid_interface_name("../x") && !valid_interface_name("") && !valid_interface_name("a234567890123456"));
    }

    /// The values of this machine, valid for the schema.
    #[test]
    fn values_of_this_machine() {
        let l = Linux::new(LinuxConfig { lan_interfaces: vec!["lo".into()], wan_interface: Some("lo".into()), device_log: None });
        let schema = Schema::igd();
        let up = uptime().unwrap();
        let got: u32 = get(&l, "InternetGatewayDevice.DeviceInfo.UpTime").unwrap().parse().unwrap();
        assert!(got >= up && got <= up + 2, "{got} vs {up}");
        let lo = format!("{LAN}LANEthernetInterfaceConfig.1.");
        assert_eq!(get(&l, &format!("{lo}Enable")).as_deref(), Some("true"));
        assert_eq!(get(&l, &format!("{lo}Status")).as_deref(), Some("Up"));
        assert_eq!(get(&l, &format!("{lo}MACAddress")).as_deref(), Some("00:00:00:00:00:00"));
        assert_eq!(get(&l, &format!("{LAN}LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress")).as_deref(), Some("127.0.0.1"));
        assert_eq!(get(&l, &format!("{LAN}LANHostConfigManagement.IPInterface.1.IPInterfaceSubnetMask")).as_deref(), Some("255.0.0.0"));
        assert_eq!(get(&l, &format!("{LAN}LANEthernetInterfaceConfig.2.Enable")), None, "one interface mapped");
        assert_eq!(get(&l, &format!("{WAN}{WAN_IP}ExternalIPAddress")).as_deref(), Some("127.0.0.1"));
        assert_eq!(get(&l, &format!("{WAN}{WAN_IP}ConnectionStatus")).as_deref(), Some("Connected"));
        assert_eq!(get(&l, &format!("{LAN}Hosts.HostNumberOfEntries")).as_deref(), Some("0"), "no neighbours on lo");
        let mut names: Vec<String> = schema
            .params
            .iter()
            .filter(|p| {
                p.path.starts_with("InternetGatewayDevice.LANDevice.{i}.")
                    || p.path.starts_with("InternetGatewayDevice.WANDevice.{i}.")
                    || p.path.starts_with(TIME)
                    || p.path.starts_with(DI)
            })
            .map(|p| p.path.replace("{i}", "1"))
            .collect();
        names.push(format!("{LAN}Hosts.Host.1.IPAddress"));
        let values = l.get(&names).unwrap();
        assert!(values.len() > 30, "{}", values.len());
        for (k, v) in &values {
            schema.param(k).unwrap().validate(v).unwrap_or_else(|e| panic!("{k} = {v:?}: {e}"));
        }
        // Live values are not writable; the rest is stored by the agent.
        assert!(
            matches!(l.set(&[(format!("{lo}Enable"), "false".into())]), Err(ProviderError::Fault { code: 9003, ref faults, .. }) if faults[0].1.code == 9001)
        );
        assert!(l.set(&[(format!("{lo}MACAddressControlEnabled"), "true".into())]).is_ok());
        assert!(matches!(l.add(&format!("{WAN}WANConnectionDevice.")), Err(ProviderError::Fault { code: 9001, .. })));
        assert_eq!(l.instances(WAN).unwrap(), vec![format!("{WAN}WANConnectionDevice.1."), format!("{WAN}{WAN_IP}")]);
        assert_eq!(l.instances(LAN).unwrap()[..2], [lo.clone(), format!("{LAN}LANHostConfigManagement.IPInterface.1.")]);
    }

    #[test]
    fn device_log_keeps_the_end() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("messages");
        std::fs::write(&f, format!("{}END", "é".repeat(40_000))).unwrap();
        let l = Linux::new(LinuxConfig { device_log: Some(f), ..Default::default() });
        let log = get(&l, "InternetGatewayDevice.DeviceInfo.DeviceLog").unwrap();
        assert_eq!(log.chars().count(), DEVICE_LOG_MAX);
        assert!(log.ends_with("éEND"));
        Schema::igd().param("InternetGatewayDevice.DeviceInfo.DeviceLog").unwrap().validate(&log).unwrap();
        let none = Linux::new(LinuxConfig { device_log: Some(d.path().join("missing")), ..Default::default() });
        assert_eq!(get(&none, "InternetGatewayDevice.DeviceInfo.DeviceLog").as_deref(), Some(""));
        assert_eq!(get(&Linux::new(LinuxConfig::default()), "InternetGatewayDevice.DeviceInfo.DeviceLog"), None, "not configured: stored");
    }
}
