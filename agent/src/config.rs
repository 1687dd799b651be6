//! The agent's configuration file (`cpekit agent --config agent.toml`).
//!
//! `examples/agent.toml` sets every key with a comment on what it does; it
//! is also the CONFIG FILE section of `cpekit agent --help` and the man
//! page, and a test checks that it parses and leaves no key out. Loading
//! checks everything a start would: numbers within their ranges, the
//! `[device]` backend keys, and the `[[vendor_parameters]]`, `[[hooks]]`
//! and `[[providers]]` entries against the data model; every error names
//! its key or entry (exit status 3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl foundation::Kind for ConfigError {
    /// Every config failure is reported as malformed input (exit status 3),
    /// an unreadable file included.
    fn kind(&self) -> foundation::ErrorKind {
        match self {
            ConfigError::Read { .. } | ConfigError::Parse { .. } | ConfigError::Invalid(_) => foundation::ErrorKind::Malformed,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub acs: Acs,
    pub device: Device,
    pub agent: Agent,
    #[serde(default)]
    pub trust: Trust,
    /// Parameters bound to external commands (see `datamodel::hooks`).
    #[serde(default)]
    pub hooks: Vec<super::datamodel::hooks::HookConfig>,
    /// `X_<OUI>_` vendor parameters added to the data model (B.2.2).
    #[serde(default)]
    pub vendor_parameters: Vec<super::datamodel::VendorParameter>,
    /// Subtrees served by provider processes (see `datamodel::provider`
    /// and docs/provider-protocol.md).
    #[serde(default)]
    pub providers: Vec<super::datamodel::provider::ProviderConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acs {
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// PEM trust anchors for the ACS's HTTPS certificate (3.3: the CPE
    /// MUST authenticate the ACS). Without it, the webpki root set.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    /// Empty with `backend = "linux"`: from the machine (os-release, device tree/DMI).
    #[serde(default)]
    pub hardware_version: String,
    #[serde(default)]
    pub software_version: String,
    /// Where values come from besides the stored tree (see [`Backend`]).
    #[serde(default)]
    pub backend: Backend,
    /// `backend = "linux"`: network interfaces shown as
    /// LANDevice.1.LANEthernetInterfaceConfig.1, .2, ... (the first one
    /// also as LANHostConfigManagement.IPInterface.1); LAN hosts are the
    /// neighbours seen on them.
    #[serde(default)]
    pub lan_interfaces: Vec<String>,
    /// `backend = "linux"`: the interface shown as WANDevice.1 (Ethernet,
    /// WANConnectionDevice.1.WANIPConnection.1).
    #[serde(default)]
    pub wan_interface: Option<String>,
    /// `backend = "linux"`: DeviceInfo.DeviceLog is the end of this file.
    #[serde(default)]
    pub device_log: Option<PathBuf>,
}

/// Where the values of the tree come from (`[device] backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The stored tree, `[[hooks]]` and `[[providers]]` only.
    #[default]
    Static,
    /// Also the built-in Linux provider (`datamodel::linux`).
    Linux,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub state_dir: PathBuf,
    #[serde(default)]
    pub install_root: Option<PathBuf>,
    /// Listen address of the Connection Request server; none = disabled.
    #[serde(default)]
    pub connection_request: Option<SocketAddr>,
    /// Host (or IP) to advertise in ConnectionRequestURL.
    #[serde(default)]
    pub connection_request_host: Option<String>,
    /// Initial PeriodicInformInterval in seconds (sets PeriodicInformEnable).
    #[serde(default)]
    pub periodic_inform_interval: Option<u32>,
    /// MaxEnvelopes announced in the Inform (how many envelopes the ACS
    /// may put in one HTTP response). Default 1.
    #[serde(default)]
    pub max_envelopes: Option<u32>,
    /// First retry interval after a failed session (A.5.3 exponential
    /// back-off doubles it up to `retry_max_seconds`). Default 5 s.
    #[serde(default)]
    pub retry_base_seconds: Option<f64>,
    #[serde(default)]
    pub retry_max_seconds: Option<f64>,
    /// 3.7.1.4: give up a session when the ACS's HTTP response to a POST
    /// is not complete (headers and body) this long after the POST (not
    /// less than 30 s; lower values are for tests only). Default 30 s.
    #[serde(default)]
    pub response_timeout_seconds: Option<f64>,
    /// Give up a session that is not over after this long, however busy
    /// the ACS keeps it. Default 1800 s.
    #[serde(default)]
    pub session_timeout_seconds: Option<f64>,
    /// How often to look for externally changed parameter values.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Connection Requests accepted per `connection_request_window_seconds` (3.2.2).
    #[serde(default)]
    pub connection_request_limit: Option<u32>,
    #[serde(default)]
    pub connection_request_window_seconds: Option<u64>,
    /// Listen address of the LAN web server (KickURL, DownloadProgressURL,
    /// Appendix D); none = disabled.
    #[serde(default)]
    pub lan_address: Option<SocketAddr>,
    /// Host (or IP) to advertise in KickURL / DownloadProgressURL.
    #[serde(default)]
    pub lan_host: Option<String>,
    /// D.4: most Kicked calls per hour (default 10).
    #[serde(default)]
    pub kick_limit_per_hour: Option<u32>,
    /// How long a kicked browser waits for the session's answer (default 60 s).
    #[serde(default)]
    pub kick_timeout_seconds: Option<f64>,
    /// Command (argv) run to reboot the device after a Reboot (A.3.2.9)
    /// or a package that needs one; absent: the reboot is only logged.
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    /// Command (argv) run on FactoryReset (A.4.1.6) before the agent
    /// wipes its persisted tree and state.
    #[serde(default)]
    pub factory_reset_command: Option<Vec<String>>,
    /// Handler (argv) for Download FileType "3 Vendor Configuration File"
    /// and "X <OUI> ..." types: run with the downloaded file's path as the
    /// last argument; env CPEKIT_FILE_TYPE, CPEKIT_TARGET_FILE_NAME,
    /// CPEKIT_COMMAND_KEY. Non-zero exit: TransferComplete 9010 with its
    /// stderr. Absent: such Downloads are refused (9001). Configured
    /// commands are killed (with their process group) after 300 s.
    #[serde(default)]
    pub vendor_config_command: Option<Vec<String>>,
    /// File sent for Upload "1 Vendor Configuration File" (default: the
    /// parameter tree as JSON, passwords left out).
    #[serde(default)]
    pub upload_config_file: Option<PathBuf>,
    /// File sent for Upload "2 Vendor Log File" (absent: refused, 9001).
    #[serde(default)]
    pub upload_log_file: Option<PathBuf>,
    /// PEM trust anchors for HTTPS file servers (default: `[acs] ca_file`,
    /// else the webpki roots).
    #[serde(default)]
    pub transfer_ca_file: Option<PathBuf>,
    /// Give a download up when no data arrives for this long (default
    /// 300 s), whatever the package's E.4.7 timeouts say.
    #[serde(default)]
    pub transfer_stall_timeout_seconds: Option<f64>,
    /// HTTP method of Uploads (A.4.1.5 leaves it to the file server):
    /// "PUT" (default) or "POST".
    #[serde(default)]
    pub upload_method: Option<UploadMethod>,
}

/// HTTP method used for Uploads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UploadMethod {
    #[default]
    Put,
    Post,
}

impl UploadMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadMethod::Put => "PUT",
            UploadMethod::Post => "POST",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default)]
    pub packages: Vec<PathBuf>,
    #[serde(default)]
    pub vouchers: Vec<PathBuf>,
    /// The `cpekit-xmldsig` helper that checks voucher signatures (default:
    /// `$CPEKIT_XMLDSIG`, else beside the `cpekit` executable).
    #[serde(default)]
    pub voucher_helper: Option<PathBuf>,
    /// Run that helper as this user (a name, with its primary group, or
    /// "UID:GID"): an agent running as root need not verify untrusted XML
    /// as root. Default: the agent's own user.
    #[serde(default)]
    pub voucher_helper_user: Option<String>,
}

impl Trust {
    /// `voucher_helper_user` as (uid, gid); None when not set.
    pub fn voucher_helper_identity(&self) -> Result<Option<(u32, u32)>, ConfigError> {
        let Some(spec) = self.voucher_helper_user.as_deref() else { return Ok(None) };
        let bad = |why: &str| ConfigError::Invalid(format!("[trust] voucher_helper_user {spec:?}: {why}"));
        if let Some((u, g)) = spec.split_once(':') {
            let n = |x: &str| x.parse::<u32>().ok().filter(|&v| v != u32::MAX);
            return match (n(u), n(g)) {
                (Some(u), Some(g)) => Ok(Some((u, g))),
                _ => Err(bad("\"UID:GID\" takes two decimal numbers")),
            };
        }
        lookup_user(spec).map(Some).ok_or_else(|| bad("no such user"))
    }
}

/// The uid and primary gid of the user `name` (getpwnam_r: /etc/passwd or
/// whatever the C library's name service reads).
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwnam_r writes into `pwd` and `buf` (of the length given)
    // only, and sets `result` to null or to `pwd`; nothing is kept after.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
    }
}

impl AgentConfig {
    /// Read and check a config file; relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut cfg = AgentConfig::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.into(), message },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.agent.state_dir);
        if let Some(p) = cfg.device.device_log.as_mut() {
            fix(p);
        }
        if let Some(p) = cfg.agent.install_root.as_mut() {
            fix(p);
        }
        if let Some(p) = cfg.acs.ca_file.as_mut() {
            fix(p);
        }
        for p in [&mut cfg.agent.upload_config_file, &mut cfg.agent.upload_log_file, &mut cfg.agent.transfer_ca_file].into_iter().flatten() {
            fix(p);
        }
        cfg.trust.packages.iter_mut().for_each(fix);
        cfg.trust.vouchers.iter_mut().for_each(fix);
        cfg.trust.voucher_helper.iter_mut().for_each(fix);
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        let cfg: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse { path: PathBuf::new(), message: e.to_string() })?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let url = &self.acs.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!("[acs] url must be an http:// or https:// URL, got {url:?}")));
        }
        // A.3.3.1 Table 34: six upper-case hexadecimal digits.
        let oui = &self.device.oui;
        if oui.len() != 6 || !oui.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)) {
            return Err(ConfigError::Invalid(format!("[device] oui must be six upper-case hex digits, got {oui:?}")));
        }
        for (name, v) in
            [("manufacturer", &self.device.manufacturer), ("product_class", &self.device.product_class), ("serial_number", &self.device.serial_number)]
        {
            // Table 34: string(64).
            if v.chars().count() > 64 {
                return Err(ConfigError::Invalid(format!("[device] {name} is longer than 64 characters")));
            }
        }
        if self.device.serial_number.is_empty() {
            return Err(ConfigError::Invalid("[device] serial_number must not be empty".into()));
        }
        if let Some(a) = self.agent.lan_address {
            // B: KickURL "MUST be an absolute URL including a host name or IP
            // address as would be used on the LAN side".
            if a.ip().is_unspecified() && self.agent.lan_host.is_none() {
                return Err(ConfigError::Invalid(format!("[agent] lan_address {a} listens on all interfaces: set lan_host to the CPE's LAN host name or IP")));
            }
        }
        if self.agent.lan_host.as_deref().is_some_and(|h| h.is_empty() || h.contains(['/', '?', '#', '@', ' '])) {
            return Err(ConfigError::Invalid("[agent] lan_host must be a host name or IP address".into()));
        }
        if self.agent.max_envelopes == Some(0) {
            return Err(ConfigError::Invalid("[agent] max_envelopes must be at least 1 (3.4.1)".into()));
        }
        self.check_numbers()?;
        self.trust.voucher_helper_identity()?;
        self.check_device_backend()?;
        self.check_data_model()
    }

    /// Every number within its range (a negative wait, NaN or a zero
    /// limit is a mistake, not a request).
    fn check_numbers(&self) -> Result<(), ConfigError> {
        let a = &self.agent;
        let secs = |key: &str, v: Option<f64>, max: f64| match v {
            Some(x) if !(x.is_finite() && x > 0.0 && x <= max) => {
                Err(ConfigError::Invalid(format!("[agent] {key} must be a number of seconds above 0 and at most {max}, got {x}")))
            }
            _ => Ok(()),
        };
        secs("retry_base_seconds", a.retry_base_seconds, 3600.0)?;
        secs("retry_max_seconds", a.retry_max_seconds, 604_800.0)?;
        secs("response_timeout_seconds", a.response_timeout_seconds, 3600.0)?;
        secs("session_timeout_seconds", a.session_timeout_seconds, 86_400.0)?;
        secs("kick_timeout_seconds", a.kick_timeout_seconds, 3600.0)?;
        secs("transfer_stall_timeout_seconds", a.transfer_stall_timeout_seconds, 86_400.0)?;
        if self.retry_max() < self.retry_base() {
            return Err(ConfigError::Invalid(format!(
                "[agent] retry_max_seconds ({:?}) must not be below retry_base_seconds ({:?})",
                self.retry_max(),
                self.retry_base()
            )));
        }
        let int = |key: &str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(x) if !(lo..=hi).contains(&x) => Err(ConfigError::Invalid(format!("[agent] {key} must be {lo}..={hi}, got {x}"))),
            _ => Ok(()),
        };
        int("periodic_inform_interval", a.periodic_inform_interval.map(u64::from), 1, u64::from(u32::MAX))?;
        int("poll_interval_ms", a.poll_interval_ms, 10, 60_000)?;
        int("connection_request_limit", a.connection_request_limit.map(u64::from), 1, 10_000)?;
        int("connection_request_window_seconds", a.connection_request_window_seconds, 1, 86_400)?;
        int("kick_limit_per_hour", a.kick_limit_per_hour.map(u64::from), 1, 3600)?;
        Ok(())
    }

    fn check_device_backend(&self) -> Result<(), ConfigError> {
        let d = &self.device;
        if d.backend != Backend::Linux {
            for (key, set) in
                [("lan_interfaces", !d.lan_interfaces.is_empty()), ("wan_interface", d.wan_interface.is_some()), ("device_log", d.device_log.is_some())]
            {
                if set {
                    return Err(ConfigError::Invalid(format!("[device] {key} needs backend = \"linux\"")));
                }
            }
        }
        for i in d.lan_interfaces.iter().chain(&d.wan_interface) {
            if !super::datamodel::linux::valid_interface_name(i) {
                return Err(ConfigError::Invalid(format!("[device] {i:?} is not a network interface name")));
            }
        }
        if let Some(dup) = d.lan_interfaces.iter().enumerate().find(|(k, i)| d.lan_interfaces[..*k].contains(i)).map(|(_, i)| i) {
            return Err(ConfigError::Invalid(format!("[device] lan_interfaces: {dup:?} given twice")));
        }
        Ok(())
    }

    /// The data model the config builds: vendor parameters, hooks and
    /// providers checked now (so that a mistake is a config error naming
    /// the entry, not a failure at start).
    fn check_data_model(&self) -> Result<(), ConfigError> {
        let schema = self.schema().map_err(|e| ConfigError::Invalid(format!("[[vendor_parameters]] {e}")))?;
        super::datamodel::hooks::Hooks::new(&schema, &self.hooks).map_err(|e| ConfigError::Invalid(format!("[[hooks]] {e}")))?;
        super::datamodel::provider::Providers::check(&schema, &self.providers).map_err(|e| ConfigError::Invalid(format!("[[providers]] {e}")))?;
        if self.device.backend == Backend::Linux {
            let taken = self.providers.iter().find(|p| {
                [super::datamodel::linux::LAN, super::datamodel::linux::WAN].iter().any(|l| l.starts_with(&p.subtree) || p.subtree.starts_with(l))
                    || p.subtree == "InternetGatewayDevice.DeviceInfo."
                    || p.subtree == "InternetGatewayDevice.Time."
            });
            if let Some(p) = taken {
                return Err(ConfigError::Invalid(format!("[[providers]] {:?}: overlaps what backend = \"linux\" provides", p.subtree)));
            }
        }
        Ok(())
    }

    /// The InternetGatewayDevice:1.0 model with the configured vendor parameters.
    pub fn schema(&self) -> Result<super::datamodel::Schema, super::datamodel::VendorParameterError> {
        super::datamodel::Schema::igd_with(&self.vendor_parameters)
    }

    pub fn max_envelopes(&self) -> u32 {
        self.agent.max_envelopes.unwrap_or(1)
    }

    pub fn retry_base(&self) -> Duration {
        Duration::from_secs_f64(self.agent.retry_base_seconds.unwrap_or(5.0).max(0.001))
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_secs_f64(self.agent.retry_max_seconds.unwrap_or(2560.0).max(0.001))
    }

    pub fn response_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.agent.response_timeout_seconds.unwrap_or(30.0).max(0.1))
    }

    /// The longest a session may last: 30 minutes unless configured, room
    /// for hundreds of exchanges each within [`AgentConfig::response_timeout`].
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.agent.session_timeout_seconds.unwrap_or(1800.0).max(0.1))
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.agent.poll_interval_ms.unwrap_or(1000).max(10))
    }

    pub fn kick_limit_per_hour(&self) -> u32 {
        self.agent.kick_limit_per_hour.unwrap_or(10)
    }

    pub fn kick_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.agent.kick_timeout_seconds.unwrap_or(60.0).max(0.1))
    }

    pub fn device_id(&self) -> super::soap::DeviceId {
        super::soap::DeviceId {
            manufacturer: self.device.manufacturer.clone(),
            oui: self.device.oui.clone(),
            product_class: self.device.product_class.clone(),
            serial_number: self.device.serial_number.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[acs]
url = "http://127.0.0.1:7547/acs"
[device]
manufacturer = "cpekit"
oui = "00D09E"
product_class = "Gateway"
serial_number = "CPE0001"
[agent]
state_dir = "state"
"#;

    /// `[trust] voucher_helper_user`: a name (with its primary group) or
    /// "UID:GID"; anything else is a config error naming the key.
    #[test]
    fn voucher_helper_user() {
        let with = |v: &str| AgentConfig::parse(&format!("{MINIMAL}[trust]\nvoucher_helper_user = \"{v}\"\n"));
        assert_eq!(AgentConfig::parse(MINIMAL).unwrap().trust.voucher_helper_identity().unwrap(), None);
        assert_eq!(with("root").unwrap().trust.voucher_helper_identity().unwrap(), Some((0, 0)));
        assert_eq!(with("65534:65533").unwrap().trust.voucher_helper_identity().unwrap(), Some((65534, 65533)));
        for bad in ["no-such-user-cpekit", "1:x", ":1", "4294967295:1", ""] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("[trust] voucher_helper_user") && e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn minimal_config_and_defaults() {
        let c = AgentConfig::parse(MINIMAL).unwrap();
        assert_eq!(c.max_envelopes(), 1);
        assert_eq!(c.response_timeout(), Duration::from_secs(30));
        assert_eq!(c.session_timeout(), Duration::from_secs(1800));
        assert_eq!(c.retry_base(), Duration::from_secs(5));
        assert!(c.agent.connection_request.is_none());
        assert!(c.agent.lan_address.is_none());
        assert_eq!(c.kick_limit_per_hour(), 10);
    }

    #[test]
    fn lan_server_needs_a_lan_host() {
        let any = MINIMAL.replace("[agent]", "[agent]\nlan_address = \"0.0.0.0:8080\"");
        assert!(AgentConfig::parse(&any).unwrap_err().to_string().contains("lan_host"));
        let named = MINIMAL.replace("[agent]", "[agent]\nlan_address = \"0.0.0.0:8080\"\nlan_host = \"gw.lan\"\nkick_limit_per_hour = 3");
        let c = AgentConfig::parse(&named).unwrap();
        assert_eq!(c.kick_limit_per_hour(), 3);
        let bad = MINIMAL.replace("[agent]", "[agent]\nlan_address = \"127.0.0.1:8080\"\nlan_host = \"a/b\"");
        assert!(AgentConfig::parse(&bad).is_err());
    }

    #[test]
    fn clear_errors() {
        let bad_oui = MINIMAL.replace("00D09E", "00d09e");
        assert!(AgentConfig::parse(&bad_oui).unwrap_err().to_string().contains("oui"));
        let bad_url = MINIMAL.replace("http://127", "ftp://127");
        assert!(AgentConfig::parse(&bad_url).unwrap_err().to_string().contains("url"));
        let unknown = format!("{MINIMAL}\nfoo = 1\n");
        assert!(AgentConfig::parse(&unknown).unwrap_err().to_string().contains("foo"));
    }

    #[test]
    fn transfer_keys() {
        let text = format!(
            "{MINIMAL}reboot_command = [\"/sbin/reboot\"]\nfactory_reset_command = [\"/bin/reset\", \"--all\"]\nvendor_config_command = [\"apply\"]\nupload_log_file = \"log/messages\"\nupload_config_file = \"/etc/dev.conf\"\ntransfer_ca_file = \"files.pem\"\ntransfer_stall_timeout_seconds = 2.5\n"
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("agent.toml");
        std::fs::write(&f, text).unwrap();
        let c = AgentConfig::load(&f).unwrap();
        assert_eq!(c.agent.reboot_command.as_deref(), Some(&["/sbin/reboot".to_string()][..]));
        assert_eq!(c.agent.factory_reset_command.as_ref().map(|v| v.len()), Some(2));
        assert_eq!(c.agent.upload_log_file, Some(d.path().join("log/messages")));
        assert_eq!(c.agent.upload_config_file, Some(PathBuf::from("/etc/dev.conf")));
        assert_eq!(c.agent.transfer_ca_file, Some(d.path().join("files.pem")));
        assert_eq!(c.agent.transfer_stall_timeout_seconds, Some(2.5));
    }

    /// Issue 13: every number is range-checked, and the message names the key.
    #[test]
    fn numbers_are_range_checked() {
        for (line, key) in [
            ("retry_base_seconds = -1", "retry_base_seconds"),
            ("retry_base_seconds = nan", "retry_base_seconds"),
            ("retry_max_seconds = 0", "retry_max_seconds"),
            ("retry_base_seconds = 10\nretry_max_seconds = 5", "retry_max_seconds"),
            ("response_timeout_seconds = inf", "response_timeout_seconds"),
            ("session_timeout_seconds = 0", "session_timeout_seconds"),
            ("kick_timeout_seconds = -0.5", "kick_timeout_seconds"),
            ("transfer_stall_timeout_seconds = 1e9", "transfer_stall_timeout_seconds"),
            ("poll_interval_ms = 0", "poll_interval_ms"),
            ("periodic_inform_interval = 0", "periodic_inform_interval"),
            ("connection_request_limit = 0", "connection_request_limit"),
            ("connection_request_window_seconds = 0", "connection_request_window_seconds"),
            ("kick_limit_per_hour = 0", "kick_limit_per_hour"),
        ] {
            let e = AgentConfig::parse(&MINIMAL.replace("[agent]", &format!("[agent]\n{line}"))).unwrap_err().to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
        // Negative values for unsigned keys fail when parsing, naming the key too.
        let e = AgentConfig::parse(&MINIMAL.replace("[agent]", "[agent]\npoll_interval_ms = -5")).unwrap_err().to_string();
        assert!(e.contains("poll_interval_ms"), "{e}");
        let ok = MINIMAL.replace("[agent]", "[agent]\nretry_base_seconds = 0.05\nretry_max_seconds = 0.2\nsession_timeout_seconds = 30");
        let c = AgentConfig::parse(&ok).unwrap();
        assert_eq!(c.session_timeout(), Duration::from_secs(30));
        assert_eq!(AgentConfig::parse(MINIMAL).unwrap().session_timeout(), Duration::from_secs(1800));
    }

    #[test]
    fn device_backend_keys() {
        let linux = MINIMAL.replace("serial_number = \"CPE0001\"", "serial_number = \"CPE0001\"\nbackend = \"linux\"\nlan_interfaces = [\"br-lan\", \"eth1\"]\nwan_interface = \"eth0\"\ndevice_log = \"log/messages\"");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("agent.toml");
        std::fs::write(&f, &linux).unwrap();
        let c = AgentConfig::load(&f).unwrap();
        assert_eq!(c.device.backend, Backend::Linux);
        assert_eq!(c.device.lan_interfaces, vec!["br-lan".to_string(), "eth1".to_string()]);
        assert_eq!(c.device.device_log, Some(d.path().join("log/messages")));
        let no_backend = linux.replace("backend = \"linux\"\n", "");
        assert!(AgentConfig::parse(&no_backend).unwrap_err().to_string().contains("[device] lan_interfaces needs backend"));
        let bad = linux.replace("\"eth1\"", "\"../etc\"");
        assert!(AgentConfig::parse(&bad).unwrap_err().to_string().contains("\"../etc\""));
        let dup = linux.replace("\"eth1\"", "\"br-lan\"");
        assert!(AgentConfig::parse(&dup).unwrap_err().to_string().contains("given twice"));
        let unknown = linux.replace("\"linux\"", "\"bsd\"");
        assert!(AgentConfig::parse(&unknown).unwrap_err().to_string().contains("backend"));
        let overlap = format!("{linux}\n[[providers]]\nsubtree = \"InternetGatewayDevice.LANDevice.1.Hosts.\"\ncommand = [\"x\"]\n");
        assert!(AgentConfig::parse(&overlap).unwrap_err().to_string().contains("overlaps"));
    }

    /// Mistakes in [[hooks]], [[vendor_parameters]] and [[providers]] are
    /// config errors naming the entry (exit status 3), found when loading.
    #[test]
    fn data_model_entries_are_checked_when_loading() {
        let hook = format!("{MINIMAL}\n[[hooks]]\nparameter = \"InternetGatewayDevice.Nope\"\nget = [\"x\"]\n");
        let e = AgentConfig::parse(&hook).unwrap_err();
        assert!(e.to_string().starts_with("[[hooks]]") && e.to_string().contains("InternetGatewayDevice.Nope"), "{e}");
        assert_eq!(foundation::Kind::kind(&e), foundation::ErrorKind::Malformed);
        let vp = format!("{MINIMAL}\n[[vendor_parameters]]\nname = \"InternetGatewayDevice.DeviceInfo.Colour\"\ntype = \"string\"\n");
        assert!(AgentConfig::parse(&vp).unwrap_err().to_string().starts_with("[[vendor_parameters]]"));
        let pr = format!("{MINIMAL}\n[[providers]]\nsubtree = \"InternetGatewayDevice.Nope.\"\ncommand = [\"x\"]\n");
        assert!(AgentConfig::parse(&pr).unwrap_err().to_string().starts_with("[[providers]]"));
        // A hook on a vendor parameter is fine (the schema includes them).
        let both = format!(
            "{MINIMAL}\n[[vendor_parameters]]\nname = \"InternetGatewayDevice.DeviceInfo.X_00D09E_T\"\ntype = \"int\"\n[[hooks]]\nparameter = \"InternetGatewayDevice.DeviceInfo.X_00D09E_T\"\nget = [\"x\"]\n"
        );
        AgentConfig::parse(&both).unwrap();
    }

    /// examples/agent.toml (shipped, installed, shown in `--help` and the
    /// man page) is a valid config that sets every key.
    #[test]
    fn the_example_sets_every_key() {
        let c = AgentConfig::parse(include_str!("../../examples/agent.toml")).unwrap();
        // A read-only parameter's hook has no set command; one hook shows it.
        assert!(c.hooks.iter().any(|h| h.set.is_some()));
        let all = format!("{c:?}").replace("set: None", "");
        assert!(!all.contains("None"), "a key is missing from examples/agent.toml: {all}");
        assert!(!all.contains("[]"), "an empty list in examples/agent.toml: {all}");
        assert_eq!(c.device.backend, Backend::Linux);
        assert_eq!((c.hooks.len(), c.vendor_parameters.len(), c.providers.len()), (2, 1, 1));
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("agent.toml");
        std::fs::write(&f, MINIMAL).unwrap();
        let c = AgentConfig::load(&f).unwrap();
        assert_eq!(c.agent.state_dir, d.path().join("state"));
    }
}
