//! Preconditions checked before the first change (E.4.10, E.4.12, E.4.13):
//! "the recipient MUST NOT install the files or take any other action".

use std::collections::BTreeMap;
use std::path::Path;

use pkgfmt::{Command, CommandList, VersionNumber};

use super::InstallError;

/// What the device knows about itself.
#[derive(Debug, Clone, Default)]
pub struct DeviceConfig {
    /// Current software version; required when a package has Min/Max Version.
    pub current_version: Option<VersionNumber>,
    /// Available non-volatile storage in bytes; `None` = free space of the
    /// filesystem holding the install root.
    pub nonvolatile_storage: Option<u64>,
    /// Available volatile storage (RAM) in bytes; `None` = MemAvailable.
    pub volatile_storage: Option<u64>,
    /// Device attributes: defining entity → class → value (Table 77).
    pub attributes: BTreeMap<u32, BTreeMap<u32, u32>>,
}

fn reject(index: usize, why: String) -> InstallError {
    InstallError::Rejected { index, reason: why }
}

/// Check every precondition command of the list, in order.
pub fn check(commands: &CommandList, cfg: &DeviceConfig, root: &Path) -> Result<(), InstallError> {
    for (i, c) in commands.commands.iter().enumerate() {
        match c {
            Command::MinimumVersion(min) => {
                let cur = current(cfg, i)?;
                if !min.admits_as_minimum(cur) {
                    return Err(reject(i, format!("device version {cur} is below the package minimum {min} (E.4.10)")));
                }
            }
            Command::MaximumVersion(max) => {
                let cur = current(cfg, i)?;
                if !max.admits_as_maximum(cur) {
                    return Err(reject(i, format!("device version {cur} is above the package maximum {max} (E.4.10)")));
                }
            }
            Command::MinimumNonVolatileStorage(need) => {
                let have = match cfg.nonvolatile_storage {
                    Some(v) => v,
                    None => {
                        free_space(root).map_err(|source| InstallError::from(crate::IoError::Op { context: format!("statvfs {}", root.display()), source }))?
                    }
                };
                if have < *need as u64 {
                    return Err(reject(i, format!("needs {need} bytes of non-volatile storage, {have} available (E.4.12)")));
                }
            }
            Command::MinimumVolatileStorage(need) => {
                let have = match cfg.volatile_storage {
                    Some(v) => Some(v),
                    None => mem_available(),
                };
                if let Some(have) = have {
                    if have < *need as u64 {
                        return Err(reject(i, format!("needs {need} bytes of volatile storage, {have} available (E.4.12)")));
                    }
                }
            }
            Command::RequiredAttributes(a) => {
                // E.4.13: an unrecognised defining entity or class is ignored.
                if let Some(value) = cfg.attributes.get(&a.defining_entity).and_then(|classes| classes.get(&a.class)) {
                    if !a.attributes.contains(value) {
                        return Err(reject(
                            i,
                            format!(
                                "device attribute (entity 0x{:08X}, class {}) = {value} is not one of {:?} (E.4.13)",
                                a.defining_entity, a.class, a.attributes
                            ),
                        ));
                    }
                }
            }
            Command::End => break,
            _ => {}
        }
    }
    Ok(())
}

fn current(cfg: &DeviceConfig, i: usize) -> Result<&VersionNumber, InstallError> {
    cfg.current_version
        .as_ref()
        .ok_or_else(|| reject(i, "package has a Minimum/Maximum Version but the device version is unknown (give --current-version)".into()))
}

/// Bytes available to unprivileged writers on the filesystem of `p`.
pub fn free_space(p: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkgfmt::RequiredAttributes;

    fn v(s: &str) -> VersionNumber {
        s.parse().unwrap()
    }

    fn cfg(ver: &str) -> DeviceConfig {
        DeviceConfig { current_version: Some(v(ver)), nonvolatile_storage: Some(1000), volatile_storage: Some(1000), ..Default::default() }
    }

    #[test]
    fn version_range() {
        let l = CommandList::new(vec![Command::MinimumVersion(v("3.0.0")), Command::MaximumVersion(v("3.0.21"))]);
        let root = Path::new("/");
        assert!(check(&l, &cfg("3.0.21"), root).is_ok());
        assert!(check(&l, &cfg("3.0"), root).is_ok());
        let e = check(&l, &cfg("3.0.22"), root).unwrap_err();
        assert!(matches!(e, InstallError::Rejected { index: 1, .. }), "{e}");
        let e = check(&l, &cfg("2.9"), root).unwrap_err();
        assert!(matches!(e, InstallError::Rejected { index: 0, .. }), "{e}");
        let e = check(&l, &DeviceConfig::default(), root).unwrap_err();
        assert!(e.to_string().contains("--current-version"));
    }

    #[test]
    fn storage_and_attributes() {
        let root = Path::new("/");
        let l = CommandList::new(vec![Command::MinimumNonVolatileStorage(1001)]);
        assert!(check(&l, &cfg("1"), root).is_err());
        let l = CommandList::new(vec![Command::MinimumVolatileStorage(1000)]);
        assert!(check(&l, &cfg("1"), root).is_ok());
        let mut c = cfg("1");
        c.attributes.entry(0xFF00_0D2B).or_default().insert(1, 7);
        let req = |entity, class, attrs: Vec<u32>| {
            CommandList::new(vec![Command::RequiredAttributes(RequiredAttributes { defining_entity: entity, class, attributes: attrs })])
        };
        assert!(check(&req(0xFF00_0D2B, 1, vec![6, 7]), &c, root).is_ok());
        assert!(check(&req(0xFF00_0D2B, 1, vec![6]), &c, root).is_err());
        // Unknown entity or class: ignored.
        assert!(check(&req(0xFF00_0001, 1, vec![6]), &c, root).is_ok());
        assert!(check(&req(0xFF00_0D2B, 2, vec![6]), &c, root).is_ok());
    }
}
