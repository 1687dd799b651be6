//! Turning the command list into concrete actions on *this* tree (E.4.3–
//! E.4.9), before anything is changed. The planner simulates the tree as
//! commands proceed (an earlier Remove affects a later Add), so the plan is
//! both what `--dry-run` prints and what the executor journals and runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pkgfmt::{Command, CommandList, EntryKind};
use serde::{Deserialize, Serialize};

use super::beneath::{self, Dir};
use super::path::{check_parents, RelPath};
use super::{InstallError, UnsafePath};

/// One effect on the tree, or a decision not to change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Install payload file of command `index` at `path`.
    Write { index: usize, path: String, replaces: bool, mkdirs: Vec<String> },
    /// Remove a file, link or whole sub-tree.
    Remove { index: usize, path: String, tree: bool },
    /// Rename `from` to `to`, overwriting `to`.
    Rename { index: usize, from: String, to: String, replaces: bool, mkdirs: Vec<String> },
    /// Nothing to do for this command.
    Skip { index: usize, command: String, reason: String },
    /// Informational command (Version, Description, Role, timeouts, ...).
    Info { index: usize, command: String, text: String },
    /// Vendor-specific command, passed to the vendor handler.
    Vendor { index: usize, kind: u32, length: usize },
    /// cpekit Filesystem Entry: a symbolic link `path` -> `target`, replacing a non-directory.
    Symlink { index: usize, path: String, target: String, replaces: bool, mkdirs: Vec<String> },
    /// cpekit Filesystem Entry: create directory `path` (after its missing
    /// parents `mkdirs`), or set the attributes of the one that `exists`.
    Directory { index: usize, path: String, exists: bool, mkdirs: Vec<String> },
}

impl Action {
    pub fn index(&self) -> usize {
        match self {
            Action::Write { index, .. }
            | Action::Remove { index, .. }
            | Action::Rename { index, .. }
            | Action::Skip { index, .. }
            | Action::Info { index, .. }
            | Action::Vendor { index, .. }
            | Action::Symlink { index, .. }
            | Action::Directory { index, .. } => *index,
        }
    }

    pub fn mutates(&self) -> bool {
        matches!(self, Action::Write { .. } | Action::Remove { .. } | Action::Rename { .. } | Action::Symlink { .. } | Action::Directory { .. })
    }

    /// One line for `--dry-run`.
    pub fn describe(&self) -> String {
        match self {
            Action::Write { index, path, replaces, mkdirs } => format!(
                "#{index} write /{path} ({}{})",
                if *replaces { "replace existing file" } else { "new file" },
                if mkdirs.is_empty() {
                    String::new()
                } else {
                    format!(", create directories {}", mkdirs.iter().map(|d| format!("/{d}")).collect::<Vec<_>>().join(" "))
                }
            ),
            Action::Remove { index, path, tree } => {
                format!("#{index} remove /{path}{}", if *tree { " and everything below it" } else { "" })
            }
            Action::Rename { index, from, to, replaces, .. } => {
                format!("#{index} move /{from} -> /{to}{}", if *replaces { " (overwrite)" } else { "" })
            }
            Action::Skip { index, command, reason } => format!("#{index} {command}: no change ({reason})"),
            Action::Info { index, command, text } => format!("#{index} {command}: {text}"),
            Action::Vendor { index, kind, length } => {
                format!("#{index} vendor command {kind} ({length} bytes) -> vendor handler")
            }
            Action::Symlink { index, path, target, replaces, mkdirs } => {
                format!("#{index} symlink /{path} -> {target}{}{}", if *replaces { " (replace existing)" } else { "" }, dirs_text(mkdirs))
            }
            Action::Directory { index, path, exists, mkdirs } => {
                format!("#{index} directory /{path} ({}{})", if *exists { "set attributes" } else { "create" }, dirs_text(mkdirs))
            }
        }
    }
}

fn dirs_text(mkdirs: &[String]) -> String {
    if mkdirs.is_empty() {
        String::new()
    } else {
        format!(", create directories {}", mkdirs.iter().map(|d| format!("/{d}")).collect::<Vec<_>>().join(" "))
    }
}

/// What is at a path in the simulated tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Absent,
    File,
    /// `fresh`: created by this plan, so nothing of the real tree is below it.
    Dir {
        fresh: bool,
    },
}

/// The real tree plus the plan's changes so far.
struct Overlay<'a> {
    root: &'a Dir,
    entries: BTreeMap<PathBuf, Node>,
    cleared: bool,
    /// Symbolic links this package creates (File nodes that are links):
    /// never followed by a later command.
    links: BTreeSet<PathBuf>,
}

impl<'a> Overlay<'a> {
    fn real(&self, p: &Path) -> Node {
        let (parent, name) = beneath::split(p);
        match self.root.walk(parent, "").ok().and_then(|d| d.stat(name).ok().flatten()) {
            Some(m) if rustix::fs::FileType::from_raw_mode(m.st_mode) == rustix::fs::FileType::Directory => Node::Dir { fresh: false },
            Some(_) => Node::File, // files, symlinks (never followed) and specials
            None => Node::Absent,
        }
    }

    /// True when the real tree is visible at `p`'s position.
    fn real_visible(&self, p: &Path) -> bool {
        if self.cleared {
            return false;
        }
        for a in p.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            if let Some(Node::Absent | Node::File | Node::Dir { fresh: true }) = self.entries.get(a) {
                return false;
            }
        }
        true
    }

    fn node(&self, p: &Path) -> Node {
        if let Some(n) = self.entries.get(p) {
            return *n;
        }
        if self.real_visible(p) {
            self.real(p)
        } else {
            Node::Absent
        }
    }

    fn exists(&self, p: &RelPath) -> bool {
        self.node(p.as_path()) != Node::Absent
    }

    fn remove(&mut self, p: &Path) {
        let keys: Vec<PathBuf> = self.entries.range(p.to_path_buf()..).map(|(k, _)| k.clone()).take_while(|k| k.starts_with(p)).collect();
        for k in keys {
            self.entries.remove(&k);
        }
        self.links.retain(|l| !l.starts_with(p));
        self.entries.insert(p.to_path_buf(), Node::Absent);
    }

    /// Every ancestor of `p` is a directory or absent (to be created): a
    /// file there, or a link this package created, is refused.
    fn check_parents(&self, index: usize, p: &RelPath) -> Result<(), InstallError> {
        for a in p.ancestors() {
            if self.links.contains(a) {
                return Err(UnsafePath::PackageLink { index, path: format!("/{}", a.display()) }.into());
            }
            if self.node(a) == Node::File {
                return Err(InstallError::Rejected { index, reason: format!("/{} is not a directory", a.display()) });
            }
        }
        Ok(())
    }

    /// Mark `p` present as a file, creating missing ancestors; returns the
    /// directories that must be created, outermost first.
    fn create_file(&mut self, p: &RelPath) -> Vec<String> {
        let mut made = Vec::new();
        for a in p.ancestors() {
            if self.node(a) == Node::Absent {
                self.entries.insert(a.to_path_buf(), Node::Dir { fresh: true });
                made.push(a.display().to_string());
            }
        }
        self.entries.insert(p.as_path().to_path_buf(), Node::File);
        self.links.remove(p.as_path());
        made
    }

    /// Mark `p` present as a new directory, creating missing ancestors;
    /// returns the ancestors that must be created, outermost first.
    fn create_dir(&mut self, p: &RelPath) -> Vec<String> {
        let mut made = Vec::new();
        for a in p.ancestors() {
            if self.node(a) == Node::Absent {
                self.entries.insert(a.to_path_buf(), Node::Dir { fresh: true });
                made.push(a.display().to_string());
            }
        }
        self.entries.insert(p.as_path().to_path_buf(), Node::Dir { fresh: true });
        made
    }

    /// Names in directory `dir` (None = root) in the simulated tree.
    fn list(&self, dir: Option<&RelPath>) -> Vec<String> {
        let d: PathBuf = dir.map(|d| d.as_path().to_path_buf()).unwrap_or_default();
        let mut names = std::collections::BTreeSet::new();
        let visible = if d.as_os_str().is_empty() { !self.cleared } else { self.real_visible(&d) && self.entries.get(&d) != Some(&Node::Dir { fresh: true }) };
        if visible {
            if let Ok(found) = self.root.walk(&d, "").and_then(|dir| dir.names().map_err(|source| beneath::WalkError::Io { path: String::new(), source })) {
                for n in found {
                    if let Ok(n) = String::from_utf8(n) {
                        names.insert(n);
                    }
                }
            }
        }
        for (k, v) in &self.entries {
            if k.parent() == Some(d.as_path()) {
                if let Some(n) = k.file_name().and_then(|n| n.to_str()) {
                    if *v == Node::Absent {
                        names.remove(n);
                    } else {
                        names.insert(n.to_string());
                    }
                }
            }
        }
        names.into_iter().filter(|n| self.node(&d.join(n)) != Node::Absent).collect()
    }
}

/// E.4.1: a versioned name is BASE.EXT; the base is up to 8 characters.
fn versioned_base(name: &str) -> &str {
    name.rsplit_once('.').map(|(b, _)| b).unwrap_or(name)
}

/// Files in `p`'s directory with the same base and any 3-character extension.
fn versioned_matches(ov: &Overlay<'_>, p: &RelPath) -> Vec<RelPath> {
    let base = versioned_base(p.file_name());
    let parent = p.parent();
    ov.list(parent.as_ref())
        .into_iter()
        .filter(|n| n.rsplit_once('.').is_some_and(|(b, ext)| b == base && ext.chars().count() == 3))
        // A name that would make the path too long for a package path
        // (PATH_MAX) is not one a package can name either.
        .filter_map(|n| match &parent {
            Some(d) => d.join(&n).ok(),
            None => RelPath::parse(&n).ok(),
        })
        .filter(|m| ov.node(m.as_path()) == Node::File)
        .collect()
}

/// E.4.5: "If the versioned file extension string is a decimal number, then
/// the lowest numbered file is moved"; otherwise the first by name.
fn pick_versioned(mut m: Vec<RelPath>) -> Option<RelPath> {
    let ext_num = |p: &RelPath| p.file_name().rsplit_once('.').and_then(|(_, e)| e.parse::<u32>().ok());
    m.sort_by(|a, b| match (ext_num(a), ext_num(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    m.into_iter().next()
}

fn rel(index: usize, path: &str, root: &Dir, ov: &Overlay<'_>) -> Result<RelPath, InstallError> {
    let p = RelPath::parse(path).map_err(|e| InstallError::Rejected { index, reason: e.to_string() })?;
    check_parents(root, &p).map_err(|e| InstallError::Rejected { index, reason: foundation::error_kind::chain(&e) })?;
    ov.check_parents(index, &p)?;
    Ok(p)
}

fn s(p: &RelPath) -> String {
    p.as_path().display().to_string()
}

/// The result of planning.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub reboot_required: bool,
    /// Some Extract/Add/Move/Remove command has the Unsafe flag, or Format.
    pub has_unsafe: bool,
}

/// Plan every command, in order (E.4.1). Rejects (with the command index)
/// anything that must stop the whole install before it starts.
pub fn plan(commands: &CommandList, root: &Dir) -> Result<Plan, InstallError> {
    let mut ov = Overlay { root, entries: BTreeMap::new(), cleared: false, links: BTreeSet::new() };
    let mut out = Plan::default();
    pkgfmt::builder::check_reboot_last(commands.commands.iter()).map_err(|e| {
        let index = commands.commands.iter().position(|c| *c == Command::Reboot).unwrap_or(0);
        InstallError::Rejected { index, reason: e.to_string() }
    })?;
    for (index, c) in commands.commands.iter().enumerate() {
        let name = c.name().to_string();
        let skip = |reason: &str| Action::Skip { index, command: name.clone(), reason: reason.into() };
        out.has_unsafe |= c.is_unsafe() || *c == Command::FormatFileSystem;
        match c {
            Command::End => break,
            Command::ExtractFile(f) | Command::AddFile(f) => {
                let p = rel(index, &f.path, root, &ov)?;
                let node = ov.node(p.as_path());
                if let Node::Dir { .. } = node {
                    return Err(InstallError::Rejected { index, reason: format!("{} is a directory", p.display()) });
                }
                let exists = node != Node::Absent;
                if matches!(c, Command::AddFile(_)) && exists {
                    out.actions.push(skip(&format!("{} exists (Add installs only if absent)", p.display())));
                    continue;
                }
                let mkdirs = ov.create_file(&p);
                out.actions.push(Action::Write { index, path: s(&p), replaces: exists, mkdirs });
            }
            Command::ExtractVersionedFile(f) | Command::AddVersionedFile(f) => {
                let p = rel(index, &f.path, root, &ov)?;
                let matches = versioned_matches(&ov, &p);
                if matches!(c, Command::AddVersionedFile(_)) && !matches.is_empty() {
                    out.actions.push(skip(&format!("a version of {} exists ({})", p.display(), matches[0].display())));
                    continue;
                }
                for m in &matches {
                    ov.remove(m.as_path());
                    out.actions.push(Action::Remove { index, path: s(m), tree: false });
                }
                if let Node::Dir { .. } = ov.node(p.as_path()) {
                    return Err(InstallError::Rejected { index, reason: format!("{} is a directory", p.display()) });
                }
                let exists = ov.exists(&p);
                let mkdirs = ov.create_file(&p);
                out.actions.push(Action::Write { index, path: s(&p), replaces: exists, mkdirs });
            }
            Command::RemoveFile(r) => {
                let p = rel(index, &r.path, root, &ov)?;
                match ov.node(p.as_path()) {
                    Node::File => {
                        ov.remove(p.as_path());
                        out.actions.push(Action::Remove { index, path: s(&p), tree: false });
                    }
                    Node::Dir { .. } => out.actions.push(skip(&format!("{} is a directory (use Remove Sub-Tree)", p.display()))),
                    Node::Absent => out.actions.push(skip(&format!("{} does not exist", p.display()))),
                }
            }
            Command::RemoveVersionedFile(r) => {
                let p = rel(index, &r.path, root, &ov)?;
                let matches = versioned_matches(&ov, &p);
                if matches.is_empty() {
                    out.actions.push(skip("no file with that base name"));
                }
                for m in matches {
                    ov.remove(m.as_path());
                    out.actions.push(Action::Remove { index, path: s(&m), tree: false });
                }
            }
            Command::RemoveSubTree(r) => {
                let p = rel(index, &r.path, root, &ov)?;
                if ov.exists(&p) {
                    let tree = matches!(ov.node(p.as_path()), Node::Dir { .. });
                    ov.remove(p.as_path());
                    out.actions.push(Action::Remove { index, path: s(&p), tree });
                } else {
                    out.actions.push(skip(&format!("{} does not exist", p.display())));
                }
            }
            Command::MoveFile(m) | Command::MoveVersionedFile(m) => {
                let src = rel(index, &m.src, root, &ov)?;
                let dst = rel(index, &m.dst, root, &ov)?;
                let from = if matches!(c, Command::MoveVersionedFile(_)) {
                    let matches = versioned_matches(&ov, &src);
                    let Some(win) = pick_versioned(matches.clone()) else {
                        out.actions.push(skip("no file with that base name (E.4.5: no action)"));
                        continue;
                    };
                    for other in matches.iter().filter(|x| **x != win) {
                        ov.remove(other.as_path());
                        out.actions.push(Action::Remove { index, path: s(other), tree: false });
                    }
                    win
                } else {
                    match ov.node(src.as_path()) {
                        Node::File => src,
                        Node::Dir { .. } => {
                            out.actions.push(skip(&format!("{} is a directory, not a file", src.display())));
                            continue;
                        }
                        Node::Absent => {
                            out.actions.push(skip(&format!("{} does not exist (E.4.5: no action)", src.display())));
                            continue;
                        }
                    }
                };
                if from == dst {
                    out.actions.push(skip("source and destination are the same"));
                    continue;
                }
                if dst.as_path().starts_with(from.as_path()) {
                    return Err(InstallError::Rejected { index, reason: "destination is inside the source".into() });
                }
                let replaces = match ov.node(dst.as_path()) {
                    Node::Dir { .. } => return Err(InstallError::Rejected { index, reason: format!("destination {} is a directory", dst.display()) }),
                    n => n == Node::File,
                };
                let moved_link = ov.links.contains(from.as_path());
                ov.remove(from.as_path());
                let mkdirs = ov.create_file(&dst);
                if moved_link {
                    ov.links.insert(dst.as_path().to_path_buf());
                }
                out.actions.push(Action::Rename { index, from: s(&from), to: s(&dst), replaces, mkdirs });
            }
            Command::FormatFileSystem => {
                // E.4.9: "all existing files ... are to be cleared".
                for n in ov.list(None) {
                    let p = RelPath::parse(&n).map_err(|e| InstallError::Rejected { index, reason: e.to_string() })?;
                    let tree = matches!(ov.node(p.as_path()), Node::Dir { .. });
                    out.actions.push(Action::Remove { index, path: n, tree });
                }
                ov.entries.clear();
                ov.links.clear();
                ov.cleared = true;
            }
            Command::Reboot => {
                out.reboot_required = true;
                out.actions.push(Action::Info { index, command: name, text: "reboot required after install (E.4.8)".into() });
            }
            Command::Version(t) | Command::Description(t) => out.actions.push(Action::Info { index, command: name, text: t.clone() }),
            Command::Role(r) => out.actions.push(Action::Info { index, command: name, text: format!("{} ({})", r.name(), r.code()) }),
            Command::RecoverableTimeout(t) | Command::UnrecoverableTimeout(t) | Command::InitialTimeout(t) | Command::InitialActivityTimeout(t) => {
                out.actions.push(Action::Info { index, command: name, text: if *t == 0 { "infinite".into() } else { format!("{t} s") } })
            }
            Command::MinimumVersion(_)
            | Command::MaximumVersion(_)
            | Command::MinimumNonVolatileStorage(_)
            | Command::MinimumVolatileStorage(_)
            | Command::RequiredAttributes(_) => out.actions.push(Action::Info { index, command: name, text: "precondition met".into() }),
            Command::Vendor { kind, value } => out.actions.push(Action::Vendor { index, kind: *kind, length: value.len() }),
            Command::FilesystemEntry(e) => {
                let p = rel(index, &e.path, root, &ov)?;
                match &e.kind {
                    EntryKind::Directory => match ov.node(p.as_path()) {
                        Node::Dir { .. } => out.actions.push(Action::Directory { index, path: s(&p), exists: true, mkdirs: Vec::new() }),
                        Node::Absent => {
                            let mkdirs = ov.create_dir(&p);
                            out.actions.push(Action::Directory { index, path: s(&p), exists: false, mkdirs })
                        }
                        Node::File => return Err(InstallError::Rejected { index, reason: format!("{} exists and is not a directory", p.display()) }),
                    },
                    EntryKind::Symlink { target } => {
                        if target.contains('\0') {
                            return Err(InstallError::Rejected { index, reason: format!("link target {target:?} contains a NUL byte") });
                        }
                        let parent = p.parent().map(|d| d.as_path().to_path_buf()).unwrap_or_default();
                        if crate::attributes::target_escapes(&parent, target) {
                            return Err(UnsafePath::LinkEscapes { index, path: p.display(), target: target.clone() }.into());
                        }
                        let replaces = match ov.node(p.as_path()) {
                            Node::Dir { .. } => return Err(InstallError::Rejected { index, reason: format!("{} is a directory", p.display()) }),
                            n => n == Node::File,
                        };
                        let mkdirs = ov.create_file(&p);
                        ov.links.insert(p.as_path().to_path_buf());
                        out.actions.push(Action::Symlink { index, path: s(&p), target: target.clone(), replaces, mkdirs });
                    }
                }
            }
            Command::Unknown { kind, .. } => out.actions.push(skip(&format!("unknown command type {kind} ignored (E.4)"))),
        }
    }
    Ok(out)
}
