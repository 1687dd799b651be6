//! Confining package paths to the install root.
//!
//! E.2.1: paths are UNIX paths. A package path is always taken relative to
//! the root ("/bin/app" means ROOT/bin/app); `..`, NUL and empty names are
//! refused, and no existing component below the root may be a symlink, so
//! nothing a package names can reach outside the root. The tree is only
//! ever reached through [`crate::beneath`] walks from the root's descriptor
//! ([`parent_dir`], [`stat`]), never by re-resolving a checked path.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::beneath::{Dir, WalkError};

use super::{InstallError, IoError, UnsafePath};

/// Why a package path is refused (E.2.1; the path as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    #[error("path {0:?} contains `..`")]
    ParentDir(String),
    #[error("path {0:?} has a prefix")]
    Prefix(String),
    #[error("path {0:?} names the install root itself")]
    Root(String),
}

/// A validated path relative to the install root (no `..`, no root).
/// Serialized as its relative text (`etc/a`); deserializing validates it
/// again (the journal stores these, never bare strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(PathBuf);

impl TryFrom<String> for RelPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<RelPath, PathError> {
        RelPath::parse(&s)
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        // Built from `&str` only (parse, join): always UTF-8.
        p.0.to_string_lossy().into_owned()
    }
}

impl RelPath {
    /// Validate a package path (lexically; see [`check_no_symlinks`]).
    pub fn parse(pkg_path: &str) -> Result<RelPath, PathError> {
        if pkg_path.contains('\0') {
            return Err(PathError::Nul(pkg_path.into()));
        }
        let mut out = PathBuf::new();
        for c in Path::new(pkg_path).components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(n),
                Component::ParentDir => return Err(PathError::ParentDir(pkg_path.into())),
                Component::Prefix(_) => return Err(PathError::Prefix(pkg_path.into())),
            }
        }
        if out.as_os_str().is_empty() {
            return Err(PathError::Root(pkg_path.into()));
        }
        Ok(RelPath(out))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn parent(&self) -> Option<RelPath> {
        self.0.parent().filter(|p| !p.as_os_str().is_empty()).map(|p| RelPath(p.to_path_buf()))
    }

    pub fn file_name(&self) -> &str {
        self.0.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }

    pub fn join(&self, name: &str) -> RelPath {
        RelPath(self.0.join(name))
    }

    /// Every ancestor below the root, outermost first (borrowed: memory
    /// linear in the depth).
    pub fn ancestors(&self) -> impl Iterator<Item = &Path> {
        let v: Vec<&Path> = self.0.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
        v.into_iter().rev()
    }

    /// The last component.
    pub fn name(&self) -> &OsStr {
        self.0.file_name().unwrap_or_default()
    }

    pub fn display(&self) -> String {
        format!("/{}", self.0.display())
    }
}

impl From<WalkError> for InstallError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Symlink(p) => UnsafePath::Symlink(p).into(),
            WalkError::NotADirectory(p) => UnsafePath::NotADirectory(p).into(),
            WalkError::Io { path, source } => IoError::Op { context: path, source }.into(),
        }
    }
}

/// Refuse if any existing ancestor of `p` below the root is a symlink or
/// not a directory (walking from the root's descriptor; a missing one is
/// fine: it will be created). The final component itself is never
/// followed: it is replaced by rename or removed as a link.
pub fn check_parents(root: &Dir, p: &RelPath) -> Result<(), InstallError> {
    match parent_dir(root, p) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The directory holding `p`, reached from the root without following a
/// link; operate on [`RelPath::name`] in it.
pub fn parent_dir(root: &Dir, p: &RelPath) -> Result<Dir, WalkError> {
    root.walk(p.0.parent().unwrap_or(Path::new("")), "")
}

/// What is at `p` (a link is reported as such, not followed); `None` when
/// it or an ancestor does not exist. A linked or non-directory ancestor is
/// an error.
pub fn stat(root: &Dir, p: &RelPath) -> Result<Option<rustix::fs::Stat>, WalkError> {
    match parent_dir(root, p) {
        Ok(d) => d.stat(p.name()).map_err(|source| WalkError::Io { path: p.display(), source }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_means_relative_to_root() {
        assert_eq!(RelPath::parse("/bin/app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("bin//./app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("/a/b/c").unwrap().ancestors().collect::<Vec<_>>(), vec![Path::new("a"), Path::new("a/b")]);
        let p: RelPath = serde_json::from_str("\"etc/a\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"etc/a\"");
        assert!(serde_json::from_str::<RelPath>("\"../../outside\"").unwrap_err().to_string().contains("`..`"));
    }

    #[test]
    fn traversal_and_nul_refused() {
        for bad in ["/../etc/passwd", "a/../../b", "..", "/", "", "a\0b", "/./"] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RelPath::parse("a/../b").unwrap_err().to_string(), "path \"a/../b\" contains `..`");
        assert_eq!(RelPath::parse("/").unwrap_err(), PathError::Root("/".into()));
    }
}
