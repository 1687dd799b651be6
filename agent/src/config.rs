//! The agent's configuration file (`cpekit agent --config agent.toml`).
//!
//! ```toml
//! [acs]
//! url = "https://acs.example.net:7547/"   # 3.1: the ACS URL (initial value of ManagementServer.URL)
//! username = "00D09E-CPE0001"             # 3.4.4: OUI-SERIAL recommended
//! password = "secret"
//! ca_file = "acs-ca.pem"                  # optional: trust anchors for HTTPS (default: webpki roots)
//!
//! [device]                                # A.3.3.1 DeviceIdStruct, DeviceInfo.*
//! manufacturer = "cpekit"
//! oui = "00D09E"
//! product_class = "Gateway"
//! serial_number = "CPE0001"
//! hardware_version = "1.0"
//! software_version = "3.0.21"
//!
//! [agent]
//! state_dir = "/var/lib/cpekit"
//! install_root = "/"
//! connection_request = "0.0.0.0:7548"     # listen address of the Connection Request server (3.2.2)
//! connection_request_host = "192.0.2.10"  # host put in ConnectionRequestURL (default: the listen IP)
//! periodic_inform_interval = 86400        # seconds; initial PeriodicInformInterval (enables periodic informs)
//! lan_address = "192.168.1.1:8080"        # LAN web server: KickURL, DownloadProgressURL (Appendix D); omit to disable
//! lan_host = "gateway.lan"                # host put in KickURL/DownloadProgressURL (default: the listen IP)
//! kick_limit_per_hour = 10                # D.4: most Kicked calls per hour
//! reboot_command = ["/sbin/reboot"]        # Reboot (A.3.2.9), packages needing a reboot; absent: logged only
//! factory_reset_command = ["/usr/lib/cpekit/factory-reset"]  # FactoryReset hook (A.4.1.6); then the state is wiped
//! vendor_config_command = ["/usr/lib/cpekit/apply-config"]   # Download "3 Vendor Configuration File": FILE appended
//! upload_config_file = "/etc/device.conf"  # Upload "1 Vendor Configuration File" (default: parameter tree as JSON)
//! upload_log_file = "/var/log/messages"    # Upload "2 Vendor Log File"
//! transfer_ca_file = "files-ca.pem"        # HTTPS file servers (default: [acs] ca_file, else webpki roots)
//! transfer_stall_timeout_seconds = 300     # give a download up after this long without data
//! upload_method = "PUT"                    # Upload's HTTP method: "PUT" (default) or "POST"
//!
//! [trust]
//! packages = ["ca.pem"]                   # Download FileType 1/2: signed packages must chain to one (E.5)
//! vouchers = ["ca.pem"]
//!
//! [[vendor_parameters]]                   # B.2.2 vendor extensions
//! name = "InternetGatewayDevice.X_00D09E_Diag.Temperature"
//! type = "int"
//! writable = false
//!
//! [[hooks]]                               # bind a parameter to a script
//! parameter = "InternetGatewayDevice.X_00D09E_Diag.Temperature"
//! get = ["/usr/lib/cpekit/read-temp"]
//! timeout_ms = 2000
//! ```

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
    #[serde(default)]
    pub hardware_version: String,
    #[serde(default)]
    pub software_version: String,
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
        Ok(())
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

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("agent.toml");
        std::fs::write(&f, MINIMAL).unwrap();
        let c = AgentConfig::load(&f).unwrap();
        assert_eq!(c.agent.state_dir, d.path().join("state"));
    }
}
