//! E.4: the command list as a whole — a sequence of TLVs, terminated by
//! the end of the list or by an End command (E.4.2: "if encountered a
//! recipient MUST stop parsing the remainder of the command list portion of
//! the package").

use crate::codec::Reader;
use crate::command::{Command, Tlv};
use crate::error::{ParseError, ParseErrorKind};

/// The decoded command list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandList {
    pub commands: Vec<Command>,
    /// Bytes after an End command. E.4.2: the recipient "MUST stop parsing
    /// the remainder", so they are not interpreted, only kept so that the
    /// list re-encodes to the same bytes.
    pub trailer: Vec<u8>,
}

impl CommandList {
    pub fn new(commands: Vec<Command>) -> Self {
        CommandList { commands, trailer: Vec::new() }
    }

    /// Strictly parse exactly `bytes` as a command list. `base` is the
    /// absolute offset of the list in the package, used in errors.
    pub fn parse(bytes: &[u8], base: u64) -> Result<CommandList, ParseError> {
        let mut commands = Vec::new();
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let index = commands.len();
            let err =
                |rel: usize, kind, kind_code: Option<u32>| ParseError { offset: base + rel as u64, command_index: Some(index), command_type: kind_code, kind };
            let tlv: Tlv = r.read().map_err(|(rel, kind)| err(rel, kind, None))?;
            let value_start = r.position();
            let remaining = r.remaining() as u32;
            // Table 67: "The total length of the command is Length + 8 octets."
            let Some(value) = r.take(tlv.length as usize) else {
                return Err(err(value_start - 4, ParseErrorKind::CommandOverrun { length: tlv.length, remaining }, Some(tlv.kind)));
            };
            let cmd = Command::decode(tlv.kind, value).map_err(|(rel, kind)| err(value_start + rel, kind, Some(tlv.kind)))?;
            let end = cmd == Command::End;
            commands.push(cmd);
            if end {
                break;
            }
        }
        Ok(CommandList { commands, trailer: r.rest().to_vec() })
    }

    /// Canonical encoding of every command, then the trailer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.commands {
            out.extend_from_slice(&c.encode());
        }
        out.extend_from_slice(&self.trailer);
        out
    }

    /// Commands with their index, Extract/Add only.
    pub fn files(&self) -> impl Iterator<Item = (usize, &crate::command::FileCommand)> {
        self.commands.iter().enumerate().filter_map(|(i, c)| c.file().map(|f| (i, f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::RemoveCommand;

    #[test]
    fn stops_at_end_and_keeps_trailer() {
        let mut b = Command::Version("1.2".into()).encode();
        b.extend(Command::End.encode());
        b.extend([0xde, 0xad]);
        let l = CommandList::parse(&b, 24).unwrap();
        assert_eq!(l.commands.len(), 2);
        assert_eq!(l.trailer, vec![0xde, 0xad]);
        assert_eq!(l.encode(), b);
    }

    #[test]
    fn errors_carry_index_and_absolute_offset() {
        let mut b = Command::Reboot.encode();
        b.extend(Command::RemoveFile(RemoveCommand { flags: 0, path: "/x".into() }).encode());
        // Corrupt the second command's Length so it overruns.
        b[12..16].copy_from_slice(&1000u32.to_be_bytes());
        let e = CommandList::parse(&b, 24).unwrap_err();
        assert_eq!(e.command_index, Some(1));
        assert_eq!(e.command_type, Some(5));
        assert_eq!(e.offset, 24 + 12);
        assert!(e.to_string().contains("command #1 (type 5, Remove File)"), "{e}");
        // Truncated Type/Length.
        let e = CommandList::parse(&b[..11], 24).unwrap_err();
        assert_eq!(e.command_index, Some(1));
        assert!(matches!(e.kind, ParseErrorKind::Truncated { .. }));
    }

    #[test]
    fn unknown_types_are_skipped_by_length() {
        let mut b = vec![0, 0, 0, 23, 0, 0, 0, 3, 1, 2, 3];
        b.extend(Command::Reboot.encode());
        let l = CommandList::parse(&b, 0).unwrap();
        assert_eq!(l.commands[1], Command::Reboot);
    }
}

impl CommandList {
    /// Spec violations that do not stop parsing but that a recipient may
    /// act on (the installer rejects some of them), as readable sentences.
    pub fn warnings(&self) -> Vec<String> {
        use crate::command::{is_vendor_type, UNSAFE_FLAG};
        let mut out = Vec::new();
        let active: Vec<&Command> = self.commands.iter().take_while(|c| **c != Command::End).collect();
        if let Some(i) = active.iter().position(|c| **c == Command::Reboot) {
            if i + 1 != active.len() {
                out.push(format!("command #{i}: Reboot is not the last command (E.4.8 requires it last, other than End)"));
            }
        }
        for (i, c) in self.commands.iter().enumerate() {
            if let Some(flags) = c.flags() {
                if flags & !UNSAFE_FLAG != 0 {
                    out.push(format!("command #{i}: reserved Flags bits set (0x{flags:08x}); they MUST be 0 (Tables 69-71)"));
                }
            }
            match c {
                Command::Unknown { kind, .. } => out.push(format!("command #{i}: unknown type {kind}, ignored by recipients (E.4)")),
                Command::Vendor { kind, .. } if is_vendor_type(*kind) => {}
                Command::Role(crate::command::Role::Reserved(r)) => out.push(format!("command #{i}: reserved Role value {r} (Table 75)")),
                Command::ExtractVersionedFile(f) | Command::AddVersionedFile(f) => versioned(&mut out, i, &f.path),
                Command::RemoveVersionedFile(r) => versioned(&mut out, i, &r.path),
                Command::MoveVersionedFile(m) => versioned(&mut out, i, &m.src),
                _ => {}
            }
        }
        if !self.trailer.is_empty() {
            out.push(format!("{} bytes follow the End command and are not interpreted (E.4.2)", self.trailer.len()));
        }
        out
    }
}

/// E.4.1: a versioned file name has a base of up to 8 characters and a
/// 3-character extension.
fn versioned(out: &mut Vec<String>, i: usize, path: &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ok = match name.rsplit_once('.') {
        Some((base, ext)) => !base.is_empty() && base.chars().count() <= 8 && ext.chars().count() == 3,
        None => false,
    };
    if !ok {
        out.push(format!("command #{i}: versioned file name {name:?} is not BASE.EXT with a base of at most 8 and a 3-character extension (E.4.1)"));
    }
}

#[cfg(test)]
mod warning_tests {
    use super::*;
    use crate::command::{RemoveCommand, Role};

    #[test]
    fn warns_about_spec_violations() {
        let rm = |flags, path: &str| RemoveCommand { flags, path: path.into() };
        let list = CommandList {
            commands: vec![
                Command::Reboot,
                Command::RemoveFile(rm(0x10, "/a")),
                Command::RemoveVersionedFile(rm(0, "/etc/toolongname.cfg")),
                Command::RemoveVersionedFile(rm(1, "/etc/app.001")),
                Command::Role(Role::Reserved(9)),
                Command::Unknown { kind: 24, value: vec![] },
                Command::End,
            ],
            trailer: vec![0],
        };
        let w = list.warnings();
        assert_eq!(w.len(), 6, "{w:#?}");
        assert!(w[0].contains("E.4.8"));
        assert!(w[1].contains("reserved Flags"));
        assert!(w[2].contains("toolongname.cfg"));
        assert!(CommandList::new(vec![Command::RemoveFile(rm(1, "/x")), Command::Reboot, Command::End]).warnings().is_empty());
    }
}
