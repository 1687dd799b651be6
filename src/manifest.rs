//! The `package build --manifest` TOML format (documented in the `build`
//! man page). It can express every Table 68 command, in order.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pkgfmt::command::Timestamp;
use pkgfmt::{
    Builder, Command, EntryKind, FileCommand, FileMetadata, FilesystemEntry, MoveCommand, PayloadSource, RemoveCommand, RequiredAttributes, Role, VersionNumber,
};
use serde::Deserialize;

/// The manifest is malformed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

impl foundation::Kind for ManifestError {
    fn kind(&self) -> foundation::ErrorKind {
        foundation::ErrorKind::Malformed
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub minor: Option<u32>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub role: Option<RoleSpec>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub min_nonvolatile_storage: Option<u32>,
    pub min_volatile_storage: Option<u32>,
    #[serde(default)]
    pub format: bool,
    #[serde(default)]
    pub reboot: bool,
    #[serde(default)]
    pub end: bool,
    pub timeouts: Option<Timeouts>,
    #[serde(default)]
    pub required_attributes: Vec<AttributesSpec>,
    #[serde(default, rename = "command")]
    pub commands: Vec<CommandSpec>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub initial: Option<u32>,
    pub initial_activity: Option<u32>,
    pub recoverable: Option<u32>,
    pub unrecoverable: Option<u32>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RoleSpec {
    Name(String),
    Code(u32),
    Vendor {
        oui: String,
        #[serde(default)]
        args: String,
    },
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AttributesSpec {
    pub defining_entity: u32,
    pub class: u32,
    #[serde(default)]
    pub attributes: Vec<u32>,
}

/// One `[[command]]` entry; which fields apply depends on `type`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
    pub source: Option<PathBuf>,
    #[serde(default, rename = "unsafe")]
    pub unsafe_flag: bool,
    /// Raw Flags value (overrides `unsafe`), for reserved-bit tests.
    pub flags: Option<u32>,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub value: Option<toml::Value>,
    pub version: Option<String>,
    pub code: Option<u32>,
    pub role: Option<RoleSpec>,
    pub defining_entity: Option<u32>,
    pub class: Option<u32>,
    pub attributes: Option<Vec<u32>>,
    /// Permission bits (an octal string "0755" or a TOML integer 0o755),
    /// for extract/add, directory; recorded in the extended file record.
    pub mode: Option<toml::Value>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Modification time, seconds since 1970.
    pub mtime: Option<u64>,
    /// A symlink's target, kept verbatim.
    pub target: Option<String>,
}

impl CommandSpec {
    /// What an error names: the command's path (or source path of a move).
    fn subject(&self) -> Option<String> {
        let p = self.path.as_deref().or(self.src.as_deref())?;
        // A hostile path can be 64 KiB: name it by its start.
        Some(match p.char_indices().nth(96) {
            Some((cut, _)) => format!("{}…", &p[..cut]),
            None => p.to_string(),
        })
    }
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
        toml::from_str(&text).map_err(|e| ManifestError(format!("manifest {}: {e}", path.display())).into())
    }

    /// Turn the manifest into a builder. `base` resolves `source` paths.
    pub fn to_builder(&self, base: &Path) -> Result<Builder> {
        self.to_builder_inner(base).map_err(|e| match e.downcast::<ManifestError>() {
            Ok(m) => m.into(),
            Err(e) => e,
        })
    }

    fn to_builder_inner(&self, base: &Path) -> Result<Builder> {
        let mut b = Builder::new();
        if let Some(m) = self.minor {
            b = b.minor(m);
        }
        if let Some(t) = &self.timeouts {
            for (v, mk) in [
                (t.initial, Command::InitialTimeout as fn(u32) -> Command),
                (t.initial_activity, Command::InitialActivityTimeout),
                (t.recoverable, Command::RecoverableTimeout),
                (t.unrecoverable, Command::UnrecoverableTimeout),
            ] {
                if let Some(v) = v {
                    b.command(mk(v));
                }
            }
        }
        if let Some(v) = &self.version {
            b.command(Command::Version(v.clone()));
        }
        if let Some(v) = &self.description {
            b.command(Command::Description(v.clone()));
        }
        if let Some(r) = &self.role {
            b.command(Command::Role(role(r)?));
        }
        if let Some(v) = &self.min_version {
            b.command(Command::MinimumVersion(version(v)?));
        }
        if let Some(v) = &self.max_version {
            b.command(Command::MaximumVersion(version(v)?));
        }
        if let Some(v) = self.min_nonvolatile_storage {
            b.command(Command::MinimumNonVolatileStorage(v));
        }
        if let Some(v) = self.min_volatile_storage {
            b.command(Command::MinimumVolatileStorage(v));
        }
        for a in &self.required_attributes {
            b.command(Command::RequiredAttributes(attrs(a)));
        }
        if self.format {
            b.command(Command::FormatFileSystem);
        }
        if self.commands.is_empty() && !self.format && !self.reboot {
            return Err(bad("the manifest has no [[command]] (nor format or reboot): a package that does nothing is refused"));
        }
        for (i, c) in self.commands.iter().enumerate() {
            add_command(&mut b, c, base).map_err(|e| {
                let at = c.subject().map(|p| format!(" {p}")).unwrap_or_default();
                ManifestError(format!("[[command]] #{i} ({}{at}): {e}", c.kind))
            })?;
        }
        if self.reboot {
            b.command(Command::Reboot);
        }
        if self.end {
            b.command(Command::End);
        }
        Ok(b)
    }
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    ManifestError(msg.into()).into()
}

fn version(s: &str) -> Result<VersionNumber> {
    s.parse().map_err(|e: String| bad(format!("version {s:?}: {e}")))
}

fn attrs(a: &AttributesSpec) -> RequiredAttributes {
    RequiredAttributes { defining_entity: a.defining_entity, class: a.class, attributes: a.attributes.clone() }
}

fn hex_bytes(s: &str, what: &str) -> Result<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    hex::decode(&clean).map_err(|e| bad(format!("{what} {s:?} is not hex: {e}")))
}

pub fn role(r: &RoleSpec) -> Result<Role> {
    Ok(match r {
        RoleSpec::Code(c) => Role::from_code(*c),
        RoleSpec::Name(n) => match n.as_str() {
            "software-upgrade" => Role::SoftwareUpgrade,
            "software-recovery" => Role::SoftwareRecovery,
            "web-content" => Role::WebContent,
            "vendor-configuration" => Role::VendorConfiguration,
            other => bail!(bad(format!(
                "unknown role {other:?} (software-upgrade, software-recovery, web-content, vendor-configuration, a number, or {{ oui, args }})"
            ))),
        },
        RoleSpec::Vendor { oui, args } => {
            let o = hex_bytes(oui, "role oui")?;
            let oui: [u8; 3] = o.try_into().map_err(|_| bad("role oui must be 3 bytes (6 hex digits)"))?;
            Role::Vendor { oui, args: hex_bytes(args, "role args")? }
        }
    })
}

fn req<'a, T>(v: &'a Option<T>, field: &str) -> Result<&'a T> {
    v.as_ref().ok_or_else(|| anyhow!("missing `{field}`"))
}

fn value_u32(c: &CommandSpec) -> Result<u32> {
    match req(&c.value, "value")? {
        toml::Value::Integer(i) => u32::try_from(*i).map_err(|_| anyhow!("value {i} does not fit 32 bits")),
        other => bail!("value must be an integer, found {other}"),
    }
}

fn value_text(c: &CommandSpec) -> Result<String> {
    match req(&c.value, "value")? {
        toml::Value::String(s) => Ok(s.clone()),
        other => bail!("value must be a string, found {other}"),
    }
}

/// `mode`: an octal string ("0755", "755") or an integer (TOML `0o755`).
fn mode(v: &toml::Value) -> Result<u32> {
    let m = match v {
        toml::Value::Integer(i) => u32::try_from(*i).map_err(|_| anyhow!("mode {i} is out of range"))?,
        toml::Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| anyhow!("mode {s:?} is not octal"))?,
        other => bail!("mode must be an octal string or an integer, found {other}"),
    };
    if m > 0o7777 {
        bail!("mode {m:o} has bits beyond 07777 (permissions, set-id, sticky)");
    }
    Ok(m)
}

/// The attributes a command states; `None` when it states none.
fn metadata(c: &CommandSpec) -> Result<Option<FileMetadata>> {
    let m = FileMetadata {
        mode: c.mode.as_ref().map(mode).transpose()?,
        uid: c.uid,
        gid: c.gid,
        mtime: c.mtime.map(|seconds| Timestamp { seconds, nanoseconds: 0 }),
        ..FileMetadata::default()
    };
    Ok((!m.is_empty()).then_some(m))
}

/// The installer's path rules ([`pkgfmt::path`]): a package no CPE would
/// install is not built.
fn check_paths(cmd: &Command) -> Result<()> {
    pkgfmt::path::check_command(cmd).map_err(|(field, reason)| anyhow!("{field}: {reason}"))
}

/// A payload source must be a regular file (or a link to one) when the
/// manifest is read, so the error names its command.
fn check_source(source: &Path) -> Result<()> {
    match std::fs::metadata(source) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => bail!("source {} is a directory, not a file (use --from-dir for a tree)", source.display()),
        Ok(_) => bail!("source {} is not a regular file", source.display()),
        Err(e) => bail!("source {}: {e}", source.display()),
    }
}

fn add_command(b: &mut Builder, c: &CommandSpec, base: &Path) -> Result<()> {
    let flags = c.flags.unwrap_or(u32::from(c.unsafe_flag));
    let file = |c: &CommandSpec| -> Result<(FileCommand, PayloadSource)> {
        let path = req(&c.path, "path")?.clone();
        let source = base.join(req(&c.source, "source")?);
        check_source(&source)?;
        let metadata = metadata(c)?;
        Ok((FileCommand { flags, path, sha1: [0; 20], file_offset: 0, file_length: 0, metadata }, PayloadSource::File(source)))
    };
    let entry = |c: &CommandSpec, kind: EntryKind| -> Result<Command> {
        let path = req(&c.path, "path")?.clone();
        let metadata = metadata(c)?.unwrap_or_default();
        if matches!(kind, EntryKind::Symlink { .. }) && metadata.mode.is_some() {
            bail!("a symlink has no mode of its own (only uid and gid apply)");
        }
        Ok(Command::FilesystemEntry(FilesystemEntry { flags, path, kind, metadata }))
    };
    let remove = |c: &CommandSpec| -> Result<RemoveCommand> { Ok(RemoveCommand { flags, path: req(&c.path, "path")?.clone() }) };
    let mv = |c: &CommandSpec| -> Result<MoveCommand> { Ok(MoveCommand { flags, src: req(&c.src, "src")?.clone(), dst: req(&c.dst, "dst")?.clone() }) };
    let cmd = match c.kind.as_str() {
        "extract" | "extract-versioned" | "add" | "add-versioned" => {
            let (f, src) = file(c)?;
            let cmd = match c.kind.as_str() {
                "extract" => Command::ExtractFile(f),
                "extract-versioned" => Command::ExtractVersionedFile(f),
                "add" => Command::AddFile(f),
                _ => Command::AddVersionedFile(f),
            };
            check_paths(&cmd)?;
            b.file(cmd, src)?;
            return Ok(());
        }
        "directory" => entry(c, EntryKind::Directory)?,
        "symlink" => {
            let target = req(&c.target, "target")?;
            if target.is_empty() {
                bail!("`target` is empty");
            }
            entry(c, EntryKind::Symlink { target: target.clone() })?
        }
        "remove" => Command::RemoveFile(remove(c)?),
        "remove-versioned" => Command::RemoveVersionedFile(remove(c)?),
        "remove-subtree" => Command::RemoveSubTree(remove(c)?),
        "move" => Command::MoveFile(mv(c)?),
        "move-versioned" => Command::MoveVersionedFile(mv(c)?),
        "version" => Command::Version(value_text(c)?),
        "description" => Command::Description(value_text(c)?),
        "recoverable-timeout" => Command::RecoverableTimeout(value_u32(c)?),
        "unrecoverable-timeout" => Command::UnrecoverableTimeout(value_u32(c)?),
        "initial-timeout" => Command::InitialTimeout(value_u32(c)?),
        "initial-activity-timeout" => Command::InitialActivityTimeout(value_u32(c)?),
        "reboot" => Command::Reboot,
        "format" => Command::FormatFileSystem,
        "end" => Command::End,
        "min-version" => Command::MinimumVersion(version(req(&c.version, "version")?)?),
        "max-version" => Command::MaximumVersion(version(req(&c.version, "version")?)?),
        "role" => Command::Role(role(req(&c.role, "role")?)?),
        "min-nonvolatile-storage" => Command::MinimumNonVolatileStorage(value_u32(c)?),
        "min-volatile-storage" => Command::MinimumVolatileStorage(value_u32(c)?),
        "required-attributes" => Command::RequiredAttributes(RequiredAttributes {
            defining_entity: *req(&c.defining_entity, "defining_entity")?,
            class: *req(&c.class, "class")?,
            attributes: c.attributes.clone().unwrap_or_default(),
        }),
        "vendor" | "raw" => {
            let kind = *req(&c.code, "code")?;
            let value = match &c.value {
                None => Vec::new(),
                Some(toml::Value::String(s)) => hex_bytes(s, "value")?,
                Some(other) => bail!("value must be a hex string, found {other}"),
            };
            // Decode through the codec so a "raw" standard type is checked.
            let mut tlv = kind.to_be_bytes().to_vec();
            tlv.extend((value.len() as u32).to_be_bytes());
            tlv.extend(&value);
            let list = pkgfmt::CommandList::parse(&tlv, 0).map_err(|e| anyhow!("code {kind}: {}", e.kind))?;
            list.commands.into_iter().next().ok_or_else(|| anyhow!("empty command"))?
        }
        other => bail!("unknown command type {other:?}"),
    };
    check_paths(&cmd)?;
    b.command(cmd);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use pkgfmt::path::{MAX_DEPTH, NAME_MAX, PATH_MAX};

    /// The help texts state the limits pkgfmt::path enforces.
    #[test]
    fn help_states_the_path_limits() {
        let verify = crate::cli::Cli::command().find_subcommand("package").unwrap().find_subcommand("verify").unwrap().get_long_about().unwrap().to_string();
        for text in [crate::cli::MANIFEST_FORMAT.replace('\n', " "), verify] {
            assert!(text.contains(&format!("at most {} bytes", PATH_MAX - 1)) && text.contains("Linux PATH_MAX"), "{text}");
            assert!(text.contains(&format!("over {NAME_MAX} bytes")) && text.contains("Linux NAME_MAX"), "{text}");
            assert!(text.contains(&format!("at most {MAX_DEPTH} levels")), "{text}");
        }
        assert!(crate::cli::MANIFEST_FORMAT.contains(&format!("PATH_MAX, {PATH_MAX},")));
    }
}
