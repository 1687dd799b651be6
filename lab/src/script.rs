//! The lab ACS's script file (TOML): what to send in each CWMP session, in
//! order, and what to expect back. One `[[session]]` per session the device
//! opens; its `[[session.rpc]]` entries are sent one at a time (TR-069
//! 3.7.1.4: after the CPE has nothing more to send). Every RPC must succeed
//! (a SOAP Fault fails the script); the `expect_*` keys add checks.
//!
//! ```toml
//! [[session]]
//! expect_events = ["0 BOOTSTRAP"]
//! [[session.rpc]]
//! method = "Download"                      # A.3.2.8
//! command_key = "demo-1"
//! file_type = "1 Firmware Upgrade Image"
//! file = "demo.pkg"                        # served from --serve DIR at /files/demo.pkg
//! [[session.rpc]]
//! method = "SetVouchers"                   # A.4.1.3
//! files = ["voucher.xml"]                  # from --serve DIR
//! [[session.rpc]]
//! method = "GetOptions"                    # A.4.1.4
//! option_name = ""                         # "" = all
//! expect_enabled = ["VoIP"]
//!
//! [[session]]
//! expect_events = ["7 TRANSFER COMPLETE", "M Download"]
//! expect_transfer_complete = { command_key = "demo-1", fault_code = 0 }
//! [[session.rpc]]
//! method = "GetParameterValues"            # A.3.2.2
//! names = ["InternetGatewayDevice.DeviceInfo.SoftwareVersion"]
//! expect_values = { "InternetGatewayDevice.DeviceInfo.SoftwareVersion" = "3.0.22" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent::soap::{Body, DownloadArgs};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default, rename = "session")]
    pub sessions: Vec<SessionScript>,
}

/// One CWMP session.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionScript {
    /// Event codes the Inform must carry (A.3.3.1 Table 35), e.g. "M Download".
    #[serde(default)]
    pub expect_events: Vec<String>,
    /// A TransferComplete (A.3.3.2) the device must send in this session.
    pub expect_transfer_complete: Option<ExpectTransferComplete>,
    #[serde(default, rename = "rpc")]
    pub rpcs: Vec<Rpc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectTransferComplete {
    pub command_key: String,
    /// 0 = success (Table 38).
    pub fault_code: u32,
    /// Text the FaultString must contain.
    #[serde(default)]
    pub fault_string_contains: String,
}

/// An ACS → CPE request.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", deny_unknown_fields)]
pub enum Rpc {
    Download {
        command_key: String,
        file_type: String,
        /// A file in the --serve directory.
        file: String,
        #[serde(default)]
        delay_seconds: u32,
    },
    SetVouchers {
        /// Voucher files (XML) in the --serve directory.
        files: Vec<String>,
    },
    GetOptions {
        #[serde(default)]
        option_name: String,
        /// Options that must be listed as enabled (State bit 0).
        #[serde(default)]
        expect_enabled: Vec<String>,
    },
    GetParameterValues {
        names: Vec<String>,
        #[serde(default)]
        expect_values: BTreeMap<String, String>,
    },
}

#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Script {
    /// Read a script and check that every file it names is a plain file
    /// name present in `serve`.
    pub fn load(path: &Path, serve: &Path) -> Result<Script, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError(format!("{}: {e}", path.display())))?;
        let script = Script::parse(&text).map_err(|e| ScriptError(format!("{}: {}", path.display(), e.0)))?;
        for name in script.files() {
            let p = served_file(serve, name).ok_or_else(|| ScriptError(format!("{}: {name:?} is not a plain file name", path.display())))?;
            if !p.is_file() {
                return Err(ScriptError(format!("{}: {} does not exist", path.display(), p.display())));
            }
        }
        Ok(script)
    }

    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let script: Script = toml::from_str(text).map_err(|e| ScriptError(e.to_string()))?;
        if script.sessions.is_empty() {
            return Err(ScriptError("no [[session]]".into()));
        }
        Ok(script)
    }

    fn files(&self) -> impl Iterator<Item = &str> {
        self.sessions.iter().flat_map(|s| &s.rpcs).flat_map(|r| match r {
            Rpc::Download { file, .. } => vec![file.as_str()],
            Rpc::SetVouchers { files } => files.iter().map(String::as_str).collect(),
            _ => vec![],
        })
    }
}

/// The path of a file the lab ACS serves: a plain name inside `dir` (no
/// directories, no `..`, no hidden files), or None.
pub fn served_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
    plain.then(|| dir.join(name))
}

impl Rpc {
    /// The request to send; `files_url` is where --serve DIR is served.
    pub fn body(&self, serve: &Path, files_url: &str) -> std::io::Result<Body> {
        let read = |name: &str| std::fs::read(served_file(serve, name).ok_or_else(|| std::io::Error::other(format!("{name:?}: not a plain file name")))?);
        Ok(match self {
            Rpc::Download { command_key, file_type, file, delay_seconds } => {
                let size = std::fs::metadata(served_file(serve, file).ok_or_else(|| std::io::Error::other("not a plain file name"))?)?.len();
                Body::Download(DownloadArgs {
                    command_key: command_key.clone(),
                    file_type: file_type.clone(),
                    url: format!("{files_url}/{file}"),
                    file_size: u32::try_from(size).map_err(|_| std::io::Error::other(format!("{file}: over 4 GiB")))?,
                    delay_seconds: *delay_seconds,
                    ..Default::default()
                })
            }
            Rpc::SetVouchers { files } => Body::SetVouchers { vouchers: files.iter().map(|f| read(f)).collect::<Result<_, _>>()? },
            Rpc::GetOptions { option_name, .. } => Body::GetOptions { option_name: option_name.clone() },
            Rpc::GetParameterValues { names, .. } => Body::GetParameterValues { names: names.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let doc = include_str!("script.rs");
        let example: String = doc
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| l.strip_prefix("//! "))
            .skip_while(|l| !l.starts_with("```"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        let s = Script::parse(&example).unwrap();
        assert_eq!(s.sessions.len(), 2);
        assert_eq!(s.sessions[0].rpcs.len(), 3);
        assert!(matches!(&s.sessions[0].rpcs[2], Rpc::GetOptions { expect_enabled, .. } if expect_enabled == &["VoIP"]));
        assert_eq!(s.sessions[1].expect_transfer_complete.as_ref().unwrap().fault_code, 0);
    }

    #[test]
    fn refuses_typos_unknown_methods_and_paths() {
        assert!(Script::parse("[[session]]\nexpect_event = [\"0 BOOTSTRAP\"]").is_err());
        assert!(Script::parse("[[session]]\n[[session.rpc]]\nmethod = \"Reboot\"").is_err());
        assert!(Script::parse("[[session]]\n[[session.rpc]]\nmethod = \"GetOptions\"\nexpect_enable = [\"x\"]").is_err());
        assert!(Script::parse("").is_err());
        let d = Path::new("/srv");
        assert_eq!(served_file(d, "demo.pkg"), Some(PathBuf::from("/srv/demo.pkg")));
        for bad in ["../x", "a/b", "..", ".hidden", ""] {
            assert_eq!(served_file(d, bad), None, "{bad}");
        }
    }
}
