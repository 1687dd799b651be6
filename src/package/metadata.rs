//! How `inspect`, `dump` and `--json` show recorded file attributes: the
//! extended file record's and the Filesystem Entry's.

use pkgfmt::command::metadata::mode_string;
use pkgfmt::command::Timestamp;
use pkgfmt::{EntryKind, FileMetadata, FilesystemEntry};
use serde_json::{json, Map, Value};

fn time_json(t: Timestamp) -> Value {
    json!({ "seconds": t.seconds, "nanoseconds": t.nanoseconds })
}

/// The recorded attributes; absent ones ("leave unchanged") are omitted.
/// The mode is an octal string, as `chmod` takes it.
pub fn metadata_json(m: &FileMetadata) -> Value {
    let mut o = Map::new();
    if let Some(mode) = m.mode {
        o.insert("mode".into(), json!(format!("{mode:04o}")));
    }
    if let Some(uid) = m.uid {
        o.insert("uid".into(), json!(uid));
    }
    if let Some(gid) = m.gid {
        o.insert("gid".into(), json!(gid));
    }
    for (name, t) in [("atime", m.atime), ("mtime", m.mtime), ("ctime", m.ctime)] {
        if let Some(t) = t {
            o.insert(name.into(), time_json(t));
        }
    }
    Value::Object(o)
}

/// ` mode 0755 (rwxr-xr-x) owner 0:0`; empty when nothing is recorded.
pub fn metadata_detail(m: &FileMetadata) -> String {
    let mut s = String::new();
    if let Some(mode) = m.mode {
        s += &format!("  mode {mode:04o} ({})", mode_string(mode));
    }
    if m.uid.is_some() || m.gid.is_some() {
        let id = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        s += &format!("  owner {}:{}", id(m.uid), id(m.gid));
    }
    if let Some(t) = m.mtime {
        s += &format!("  mtime {}.{:09}", t.seconds, t.nanoseconds);
    }
    s
}

/// `inspect --json` fields of a Filesystem Entry.
pub fn entry_json(o: &mut Map<String, Value>, e: &FilesystemEntry) {
    o.insert("path".into(), json!(e.path));
    match &e.kind {
        EntryKind::Directory => {
            o.insert("entry".into(), json!("directory"));
        }
        EntryKind::Symlink { target } => {
            o.insert("entry".into(), json!("symlink"));
            o.insert("target".into(), json!(target));
        }
    }
    o.insert("metadata".into(), metadata_json(&e.metadata));
}

/// One-line description of a Filesystem Entry.
pub fn entry_detail(e: &FilesystemEntry) -> String {
    let what = match &e.kind {
        EntryKind::Directory => format!("directory {}", e.path),
        EntryKind::Symlink { target } => format!("symlink {} -> {target}", e.path),
    };
    format!("{what}{}{}", metadata_detail(&e.metadata), if e.is_unsafe() { " [unsafe]" } else { "" })
}
