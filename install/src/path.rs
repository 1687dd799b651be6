//! Confining package paths to the install root.
//!
//! E.2.1: paths are UNIX paths. A package path is always taken relative to
//! the root ("/bin/app" means ROOT/bin/app); `..`, NUL and empty names are
//! refused, and no existing component below the root may be a symlink, so
//! nothing a package names can reach outside the root.

use std::path::Path;

use super::{InstallError, IoError, UnsafePath};

/// The package-path rules and limits have one home, [`pkgfmt::path`]
/// (`cpekit package verify` and `build` apply the same ones); here the
/// validated path is `RelPath`.
pub use pkgfmt::path::{PackagePath as RelPath, PathError, MAX_DEPTH, NAME_MAX, PATH_MAX};

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

    // The rules themselves are tested where they live (pkgfmt::path).
    #[test]
    fn absolute_means_relative_to_root() {
        assert_eq!(RelPath::parse("/bin/app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("bin//./app").unwrap().as_path(), Path::new("bin/app"));
        assert_eq!(RelPath::parse("/a/b").unwrap().ancestors(), vec![RelPath::parse("a").unwrap()]);
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
