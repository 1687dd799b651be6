//! Confining package paths to the install root.
//!
//! E.2.1: paths are UNIX paths. A package path is always taken relative to
//! the root ("/bin/app" means ROOT/bin/app); `..`, NUL and empty names are
//! refused, and no existing component below the root may be a symlink, so
//! nothing a package names can reach outside the root. The tree is only
//! ever reached through [`crate::beneath`] walks from the root's descriptor
//! ([`parent_dir`], [`stat`]), never by re-resolving a checked path.

use std::path::Path;

use crate::beneath::{Dir, WalkError};

use super::{InstallError, IoError, UnsafePath};

/// The package-path rules and limits have one home, [`pkgfmt::path`]
/// (`cpekit package verify` and `build` apply the same ones); here the
/// validated path is `RelPath`.
pub use pkgfmt::path::{PackagePath as RelPath, PathError, MAX_DEPTH, NAME_MAX, PATH_MAX};

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
    root.walk(p.as_path().parent().unwrap_or(Path::new("")), "")
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

    // The rules themselves are tested where they live (pkgfmt::path).
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
