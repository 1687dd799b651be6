//! Confining package paths to the install root.
//!
//! E.2.1: paths are UNIX paths. A package path is always taken relative to
//! the root ("/bin/app" means ROOT/bin/app); `..`, NUL and empty names are
//! refused, and no existing component below the root may be a symlink, so
//! nothing a package names can reach outside the root.

use std::path::{Component, Path, PathBuf};

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(PathBuf);

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

    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
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

    /// Every ancestor below the root, outermost first.
    pub fn ancestors(&self) -> Vec<RelPath> {
        let mut v: Vec<RelPath> = self.0.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).map(|p| RelPath(p.to_path_buf())).collect();
        v.reverse();
        v
    }

    pub fn display(&self) -> String {
        format!("/{}", self.0.display())
    }
}

/// Refuse if any existing ancestor of `p` below `root` is a symlink or not
/// a directory. (The final component itself is never followed: it is
/// replaced by rename or removed as a link.)
pub fn check_no_symlinks(root: &Path, p: &RelPath) -> Result<(), InstallError> {
    for a in p.ancestors() {
        match std::fs::symlink_metadata(a.under(root)) {
            Ok(m) if m.file_type().is_symlink() => return Err(UnsafePath::Symlink(a.display()).into()),
            Ok(m) if !m.is_dir() => return Err(UnsafePath::NotADirectory(a.display()).into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(IoError::Op { context: a.display(), source }.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_means_relative_to_root() {
        assert_eq!(RelPath::parse("/bin/app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("bin//./app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("/a/b").unwrap().ancestors(), vec![RelPath(PathBuf::from("a"))]);
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
