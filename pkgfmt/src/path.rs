//! E.2.1 package paths, as a CPE takes them.
//!
//! > E.2.1: "All paths are UNIX paths."
//!
//! A package names files on the device from its root, so a package path is
//! always taken relative to the install root (`/bin/app` means
//! `ROOT/bin/app`). [`PackagePath`] is the validated form: `..`, NUL and the
//! root itself are refused, and so is anything the device's filesystem
//! calls cannot take or that would cost more than a path should
//! ([`PATH_MAX`], [`NAME_MAX`], [`MAX_DEPTH`]). Every check is one pass
//! over the given bytes after an O(1) length check, so a hostile path costs
//! at most its own length before it is refused.
//!
//! These are the rules of the installer; `cpekit package verify` and
//! `package build` apply the same ones ([`check_commands`]). The codec
//! itself keeps paths as the strings on the wire, so that `inspect` and
//! `dump` (and the 2Wire dialect reader) can show any package as it is.

use std::fmt;
use std::path::{Path, PathBuf};

use foundation::{ErrorKind, Kind};

use crate::command::{Command, EntryKind};
use crate::command_list::CommandList;

/// Linux `PATH_MAX` (`<linux/limits.h>`: "# chars in a path name including
/// nul"). The kernel refuses a path of this many bytes or more with
/// `ENAMETOOLONG`, so a package path is at most `PATH_MAX - 1` bytes.
pub const PATH_MAX: usize = 4096;

/// Linux `NAME_MAX` (`<linux/limits.h>`: "# chars in a file name"): no
/// component of a path may be longer.
pub const NAME_MAX: usize = 255;

/// Most levels (components) a package path may have. Linux sets no depth
/// limit of its own, but the installer does work per ancestor (it checks
/// and may create each one, and its plan keeps one entry per ancestor), so
/// a path's cost is its depth times its length. At 256 levels that is at
/// most 256 × `PATH_MAX` = 1 MiB for one path and 256 × 64 KiB = 16 MiB for
/// a whole command list (which E.3 keeps below 2^16 octets) — linear in the
/// command list, and far deeper than any device's file tree.
pub const MAX_DEPTH: usize = 256;

/// How much of a refused path an error message shows.
const SHOWN: usize = 96;

/// Why a package path (or a link target) is refused. Paths in messages are
/// cut to their first 96 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    #[error("path {0:?} contains `..`")]
    ParentDir(String),
    #[error("path {0:?} names the install root itself")]
    Root(String),
    #[error("path {path:?} is {length} bytes; at most {max} are allowed (Linux PATH_MAX {PATH_MAX}, counting the terminating NUL)", max = PATH_MAX - 1)]
    TooLong { path: String, length: usize },
    #[error("path {path:?} has a {length}-byte component; at most {NAME_MAX} bytes are allowed (Linux NAME_MAX)")]
    NameTooLong { path: String, length: usize },
    #[error("path {path:?} is more than {MAX_DEPTH} levels deep (MAX_DEPTH: the installer's work per path grows with its depth)")]
    TooDeep { path: String },
    #[error("{0:?} is not a single file name")]
    NotAName(String),
    /// A symbolic link's target that climbs above the install root.
    #[error("link target {0:?} leads outside the install root")]
    TargetEscapes(String),
}

/// A refused path is input that is not acceptable as a package.
impl Kind for PathError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
}

/// The start of `s` for an error message.
fn shown(s: &str) -> String {
    if s.len() <= SHOWN {
        return s.to_string();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A validated package path, relative to the install root: normalized
/// (no empty or `.` components, no leading `/`), no `..`, no NUL, not the
/// root, at most [`PATH_MAX`]` - 1` bytes as given, no component over
/// [`NAME_MAX`], at most [`MAX_DEPTH`] components.
///
/// Serialized as its relative form (`bin/app`); deserializing validates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackagePath(String);

impl PackagePath {
    /// Validate a package path as found in a command.
    pub fn parse(pkg_path: &str) -> Result<PackagePath, PathError> {
        // Bounded first: nothing below looks at more than PATH_MAX bytes.
        if pkg_path.len() >= PATH_MAX {
            return Err(PathError::TooLong { path: shown(pkg_path), length: pkg_path.len() });
        }
        if pkg_path.contains('\0') {
            return Err(PathError::Nul(shown(pkg_path)));
        }
        let mut out = String::with_capacity(pkg_path.len());
        let mut depth = 0;
        for c in pkg_path.split('/') {
            match c {
                "" | "." => {}
                ".." => return Err(PathError::ParentDir(shown(pkg_path))),
                name if name.len() > NAME_MAX => return Err(PathError::NameTooLong { path: shown(pkg_path), length: name.len() }),
                name => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(PathError::TooDeep { path: shown(pkg_path) });
                    }
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(name);
                }
            }
        }
        if out.is_empty() {
            return Err(PathError::Root(shown(pkg_path)));
        }
        Ok(PackagePath(out))
    }

    /// The normalized relative form, `bin/app`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// Where this path is below `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }

    /// The directory this path is in, unless that is the root.
    pub fn parent(&self) -> Option<PackagePath> {
        self.0.rsplit_once('/').map(|(p, _)| PackagePath(p.to_string()))
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// `name` (one component, e.g. a directory entry) inside this path,
    /// checked like any package path.
    pub fn join(&self, name: &str) -> Result<PackagePath, PathError> {
        if name.contains('/') || matches!(name, "" | "." | "..") {
            return Err(PathError::NotAName(shown(name)));
        }
        PackagePath::parse(&format!("{}/{name}", self.0))
    }

    /// Number of components.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// Every ancestor below the root, outermost first (at most
    /// [`MAX_DEPTH`]` - 1` of them), borrowed: no allocation per ancestor.
    pub fn ancestors(&self) -> impl Iterator<Item = &Path> {
        self.0.match_indices('/').map(|(i, _)| Path::new(&self.0[..i]))
    }

    /// The last component, as the file system names it.
    pub fn name(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(self.file_name())
    }

    /// As the device names it: `/bin/app`.
    pub fn display(&self) -> String {
        format!("/{}", self.0)
    }
}

impl fmt::Display for PackagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl TryFrom<&str> for PackagePath {
    type Error = PathError;
    fn try_from(s: &str) -> Result<Self, PathError> {
        PackagePath::parse(s)
    }
}

impl TryFrom<String> for PackagePath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        PackagePath::parse(&s)
    }
}

impl std::str::FromStr for PackagePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        PackagePath::parse(s)
    }
}

impl AsRef<Path> for PackagePath {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

impl serde::Serialize for PackagePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PackagePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        PackagePath::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// E.2.1 paths on the device are absolute from its root, and the install
/// root stands for it: a link target is read the same way, lexically from
/// the link's directory (or from the root if absolute). `true` when `..`
/// would climb above the root.
pub fn target_escapes(link_parent: &Path, target: &str) -> bool {
    use std::path::Component;
    let mut depth: usize = if target.starts_with('/') { 0 } else { link_parent.components().filter(|c| matches!(c, Component::Normal(_))).count() };
    for c in Path::new(target).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    false
}

/// A command a CPE refuses because of a path it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command #{index} ({name}) {field}: {reason}")]
pub struct CommandPathError {
    /// Zero-based index in the command list.
    pub index: usize,
    /// Numeric Table 68 type.
    pub command_type: u32,
    /// The command's name (Table 68, or cpekit's for its vendor commands).
    pub name: &'static str,
    /// Which field: `Path`, `Source`, `Destination` or `Target`.
    pub field: &'static str,
    pub reason: PathError,
}

impl Kind for CommandPathError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
}

/// Check the path-bearing fields of one command as the installer does: each
/// path is a [`PackagePath`], and a symbolic link's target has no NUL and
/// stays inside the root. Returns the field and the reason.
pub fn check_command(c: &Command) -> Result<(), (&'static str, PathError)> {
    let path = |field: &'static str, p: &str| PackagePath::parse(p).map_err(|e| (field, e));
    match c {
        Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => path("Path", &f.path).map(drop),
        Command::RemoveFile(r) | Command::RemoveVersionedFile(r) | Command::RemoveSubTree(r) => path("Path", &r.path).map(drop),
        Command::MoveFile(m) | Command::MoveVersionedFile(m) => {
            path("Source", &m.src)?;
            path("Destination", &m.dst).map(drop)
        }
        Command::FilesystemEntry(e) => {
            let p = path("Path", &e.path)?;
            if let EntryKind::Symlink { target } = &e.kind {
                if target.contains('\0') {
                    return Err(("Target", PathError::Nul(shown(target))));
                }
                let parent = p.parent().map(|d| d.as_path().to_path_buf()).unwrap_or_default();
                if target_escapes(&parent, target) {
                    return Err(("Target", PathError::TargetEscapes(shown(target))));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Check every command of the list ([`check_command`]); the first refused
/// one is returned with its index. Commands after an End are not part of
/// the list (E.4.2), so they are not checked.
pub fn check_commands(list: &CommandList) -> Result<(), CommandPathError> {
    for (index, c) in list.commands.iter().enumerate() {
        check_command(c).map_err(|(field, reason)| CommandPathError { index, command_type: c.type_code(), name: c.name(), field, reason })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{FilesystemEntry, MoveCommand, RemoveCommand};

    fn rel(s: &str) -> PackagePath {
        PackagePath::parse(s).unwrap()
    }

    #[test]
    fn absolute_means_relative_to_root() {
        assert_eq!(rel("/bin/app").as_path(), Path::new("bin/app"));
        assert_eq!(rel("bin//./app").as_path(), Path::new("bin/app"));
        assert_eq!(rel("./bin/app/").as_str(), "bin/app");
        assert_eq!(rel("/a/b").ancestors().collect::<Vec<_>>(), vec![Path::new("a")]);
        assert_eq!(rel("/a/b/c").ancestors().collect::<Vec<_>>(), vec![Path::new("a"), Path::new("a/b")]);
        assert_eq!(rel("/a/b/c").name(), "c");
        assert_eq!(rel("/a/b").parent(), Some(rel("a")));
        assert_eq!(rel("/a").parent(), None);
        assert_eq!(rel("/a/b.txt").file_name(), "b.txt");
        assert_eq!(rel("/a/b").display(), "/a/b");
        assert_eq!(rel("a/b").to_string(), "/a/b");
        assert_eq!(rel("/a/b").under(Path::new("/r")), Path::new("/r/a/b"));
        assert_eq!(rel("/a").join("b").unwrap(), rel("a/b"));
        for bad in ["b/c", "..", ".", ""] {
            assert!(rel("/a").join(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn traversal_and_nul_refused() {
        for bad in ["/../etc/passwd", "a/../../b", "..", "/", "", "a\0b", "/./"] {
            assert!(PackagePath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(PackagePath::parse("a/../b").unwrap_err().to_string(), "path \"a/../b\" contains `..`");
        assert_eq!(PackagePath::parse("/").unwrap_err(), PathError::Root("/".into()));
        assert_eq!(PackagePath::parse("a\0b").unwrap_err(), PathError::Nul("a\0b".into()));
    }

    /// Linux PATH_MAX counts the terminating NUL: 4095 bytes are the most.
    #[test]
    fn length_limit_is_linux_path_max() {
        let mut ok = format!("/{}", "d".repeat(200)).repeat(21);
        ok.truncate(PATH_MAX - 1);
        assert_eq!(PackagePath::parse(&ok).unwrap().as_str().len(), PATH_MAX - 2);
        for len in [PATH_MAX, PATH_MAX + 1] {
            let mut long = format!("/{}", "d".repeat(200)).repeat(21);
            long.truncate(len);
            let e = PackagePath::parse(&long).unwrap_err();
            assert_eq!(e, PathError::TooLong { path: shown(&long), length: len });
            let msg = e.to_string();
            assert!(msg.contains(&format!("{len} bytes; at most 4095")) && msg.contains("PATH_MAX 4096"), "{msg}");
            assert!(msg.len() < 300, "the message shows only the start of the path: {msg}");
        }
    }

    #[test]
    fn component_limit_is_linux_name_max() {
        assert!(PackagePath::parse(&format!("/etc/{}", "n".repeat(NAME_MAX))).is_ok());
        let long = format!("/etc/{}/x", "n".repeat(NAME_MAX + 1));
        let e = PackagePath::parse(&long).unwrap_err();
        assert_eq!(e, PathError::NameTooLong { path: shown(&long), length: 256 });
        assert!(e.to_string().contains("256-byte component; at most 255 bytes are allowed (Linux NAME_MAX)"), "{e}");
    }

    #[test]
    fn depth_limit() {
        let deep = |n: usize| "/d".repeat(n);
        assert_eq!(rel(&deep(MAX_DEPTH)).depth(), MAX_DEPTH);
        assert_eq!(rel(&deep(MAX_DEPTH)).ancestors().count(), MAX_DEPTH - 1);
        let e = PackagePath::parse(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert!(matches!(e, PathError::TooDeep { .. }));
        assert!(e.to_string().contains("more than 256 levels deep (MAX_DEPTH"), "{e}");
        // Empty and `.` components are not levels.
        assert!(PackagePath::parse(&"/d/.//".repeat(MAX_DEPTH)).is_ok());
    }

    /// The issue's case: 32,700 levels (65,400 bytes, which fits one
    /// command list) is refused by its length before any component is
    /// looked at, with nothing allocated for it.
    #[test]
    fn a_32700_level_path_is_refused_by_its_length() {
        let p = "/a".repeat(32_700);
        let e = PackagePath::parse(&p).unwrap_err();
        assert_eq!(e, PathError::TooLong { path: shown(&p), length: 65_400 });
        assert!(e.to_string().contains("PATH_MAX 4096"), "{e}");
    }

    #[test]
    fn stays_valid_through_serde() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct J {
            p: PackagePath,
        }
        let j = J { p: rel("/etc/app.conf") };
        assert_eq!(serde_json::to_string(&j).unwrap(), r#"{"p":"etc/app.conf"}"#);
        assert_eq!(serde_json::from_str::<J>(r#"{"p":"/etc/app.conf"}"#).unwrap(), j);
        let bad = serde_json::from_str::<J>(r#"{"p":"etc/../../x"}"#).unwrap_err();
        assert!(bad.to_string().contains("contains `..`"), "{bad}");
    }

    #[test]
    fn link_targets_are_confined_lexically() {
        let p = Path::new("etc/ssl");
        assert!(!target_escapes(p, "certs.pem"));
        assert!(!target_escapes(p, "../../usr/share/ca"));
        assert!(target_escapes(p, "../../../etc/shadow"));
        assert!(!target_escapes(p, "/usr/lib/libc.so"));
        assert!(target_escapes(p, "/../../etc/shadow"));
        assert!(!target_escapes(Path::new(""), "./a/../b"));
        assert!(target_escapes(Path::new(""), ".."));
    }

    #[test]
    fn commands_are_checked_field_by_field() {
        let rm = |p: &str| Command::RemoveFile(RemoveCommand { flags: 0, path: p.into() });
        let mv = |s: &str, d: &str| Command::MoveFile(MoveCommand { flags: 0, src: s.into(), dst: d.into() });
        let link = |p: &str, t: &str| {
            Command::FilesystemEntry(FilesystemEntry { flags: 0, path: p.into(), kind: EntryKind::Symlink { target: t.into() }, metadata: Default::default() })
        };
        let ok = CommandList::new(vec![Command::Reboot, rm("/a"), mv("/a", "/b"), link("/etc/l", "../usr/x"), Command::End]);
        assert_eq!(check_commands(&ok), Ok(()));
        let cases = [
            (rm("/../"), "Path", "contains `..`"),
            (mv("/a", "/x/../../y"), "Destination", "contains `..`"),
            (mv("", "/y"), "Source", "install root itself"),
            (link("/etc/l", "../../x"), "Target", "outside the install root"),
            (link("/etc/l", "a\0"), "Target", "NUL"),
        ];
        for (c, field, why) in cases {
            let list = CommandList::new(vec![Command::Version("1".into()), c.clone()]);
            let e = check_commands(&list).unwrap_err();
            assert_eq!((e.index, e.command_type, e.field), (1, c.type_code(), field), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("command #1 ({}) {field}: ", c.name())) && msg.contains(why), "{msg}");
        }
    }
}
