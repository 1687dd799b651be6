//! The agent config file the end-to-end tests share: the device identity
//! CPE0001 (software 3.0.21), state in `dir/state`, and fast retries and
//! polls so that tests run in milliseconds (test support only).

#![allow(dead_code)]

use std::path::Path;

/// `agent.toml` text for an agent talking to `acs_url`. `acs_extra` goes in
/// `[acs]` (credentials), `agent_extra` in `[agent]`, `tail` after it (e.g.
/// a `[trust]` section).
pub fn agent_toml(acs_url: &str, dir: &Path, acs_extra: &str, agent_extra: &str, tail: &str) -> String {
    format!(
        r#"
[acs]
url = "{acs_url}"
{acs_extra}
[device]
manufacturer = "cpekit"
oui = "00D09E"
product_class = "Gateway"
serial_number = "CPE0001"
hardware_version = "hw1"
software_version = "3.0.21"
[agent]
state_dir = "{state}"
retry_base_seconds = 0.05
retry_max_seconds = 0.2
response_timeout_seconds = 5
poll_interval_ms = 50
{agent_extra}
{tail}
"#,
        state = dir.join("state").display()
    )
}
