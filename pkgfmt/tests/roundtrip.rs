//! Property tests: parse(serialize(x)) == x, and serialize(parse(bytes)) ==
//! bytes for canonical packages.

use pkgfmt::command::CommandType;
use pkgfmt::*;
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9_.é-]{1,12}){1,4}"
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn timestamp() -> impl Strategy<Value = Option<command::Timestamp>> {
    proptest::option::of((any::<u64>(), 0..1_000_000_000u32).prop_map(|(seconds, nanoseconds)| command::Timestamp { seconds, nanoseconds }))
}

/// Attributes: each one recorded or "leave unchanged".
fn metadata() -> impl Strategy<Value = FileMetadata> {
    let word = || proptest::option::of(0..u32::MAX);
    (proptest::option::of(0..=0o7777u32), word(), word(), timestamp(), timestamp(), timestamp())
        .prop_map(|(mode, uid, gid, atime, mtime, ctime)| FileMetadata { mode, uid, gid, atime, mtime, ctime })
}

fn file_cmd(payload_len: u32) -> impl Strategy<Value = FileCommand> {
    (any::<u32>(), path(), any::<[u8; 20]>(), 0..=payload_len, any::<u32>(), proptest::option::of(metadata())).prop_map(
        move |(flags, path, sha1, off, len, metadata)| FileCommand {
            flags,
            path,
            sha1,
            file_offset: off,
            file_length: len % (payload_len - off + 1),
            metadata,
        },
    )
}

fn entry() -> impl Strategy<Value = FilesystemEntry> {
    let kind = prop_oneof![Just(EntryKind::Directory), "[^\\x00]{1,30}".prop_map(|target| EntryKind::Symlink { target })];
    (any::<u32>(), path(), kind, metadata()).prop_map(|(flags, path, kind, metadata)| FilesystemEntry { flags, path, kind, metadata })
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::SoftwareUpgrade),
        Just(Role::SoftwareRecovery),
        Just(Role::WebContent),
        Just(Role::VendorConfiguration),
        (any::<[u8; 3]>(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(oui, args)| Role::Vendor { oui, args }),
        (5u32..0xFF00_0000).prop_map(Role::Reserved),
        Just(Role::Reserved(0)),
    ]
}

fn words(max: usize) -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(any::<u32>(), 0..max)
}

fn unknown_kind() -> impl Strategy<Value = u32> {
    prop_oneof![Just(23u32), Just(24u32), 26u32..1000, 10000u32..].prop_filter("not a defined type", |k| CommandType::from_u32(*k).is_none())
}

/// Any command except End (End ends parsing; it is added separately).
fn command(payload_len: u32) -> impl Strategy<Value = Command> {
    let f = move || file_cmd(payload_len);
    let rm = || (any::<u32>(), path()).prop_map(|(flags, path)| RemoveCommand { flags, path });
    let mv = || (any::<u32>(), path(), path()).prop_map(|(flags, src, dst)| MoveCommand { flags, src, dst });
    let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
    prop_oneof![
        f().prop_map(Command::ExtractFile),
        f().prop_map(Command::ExtractVersionedFile),
        f().prop_map(Command::AddFile),
        f().prop_map(Command::AddVersionedFile),
        rm().prop_map(Command::RemoveFile),
        rm().prop_map(Command::RemoveVersionedFile),
        rm().prop_map(Command::RemoveSubTree),
        mv().prop_map(Command::MoveFile),
        mv().prop_map(Command::MoveVersionedFile),
        text().prop_map(Command::Version),
        text().prop_map(Command::Description),
        any::<u32>().prop_map(Command::RecoverableTimeout),
        any::<u32>().prop_map(Command::UnrecoverableTimeout),
        any::<u32>().prop_map(Command::InitialTimeout),
        any::<u32>().prop_map(Command::InitialActivityTimeout),
        Just(Command::Reboot),
        Just(Command::FormatFileSystem),
        words(6).prop_map(|v| Command::MinimumVersion(VersionNumber(v))),
        words(6).prop_map(|v| Command::MaximumVersion(VersionNumber(v))),
        role().prop_map(Command::Role),
        any::<u32>().prop_map(Command::MinimumNonVolatileStorage),
        any::<u32>().prop_map(Command::MinimumVolatileStorage),
        (any::<u32>(), any::<u32>(), words(5))
            .prop_map(|(defining_entity, class, attributes)| { Command::RequiredAttributes(RequiredAttributes { defining_entity, class, attributes }) }),
        (1000u32..=9999, bytes()).prop_map(|(kind, value)| Command::Vendor { kind, value }),
        entry().prop_map(Command::FilesystemEntry),
        (unknown_kind(), bytes()).prop_map(|(kind, value)| Command::Unknown { kind, value }),
    ]
}

fn package() -> impl Strategy<Value = (u32, CommandList, Vec<u8>)> {
    (0u32..300).prop_flat_map(|payload_len| {
        (
            any::<u32>(),
            proptest::collection::vec(command(payload_len), 0..12),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            proptest::collection::vec(any::<u8>(), payload_len as usize),
        )
            .prop_map(|(minor, mut commands, end, payload)| {
                let trailer = match end {
                    Some(t) => {
                        commands.push(Command::End);
                        t
                    }
                    None => Vec::new(),
                };
                (minor, CommandList { commands, trailer }, payload)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn command_list_round_trips((_, list, _) in package()) {
        let bytes = list.encode();
        let parsed = CommandList::parse(&bytes, 24).unwrap();
        prop_assert_eq!(&parsed, &list);
        prop_assert_eq!(parsed.encode(), bytes);
    }

    #[test]
    fn package_round_trips((minor, list, payload) in package()) {
        let prefix = Prefix::new(minor, list.clone(), payload.len() as u32).unwrap();
        let pkg = Package { prefix, payload: payload.clone() };
        let bytes = pkg.to_bytes();
        let parsed = Package::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed.prefix.commands, &list);
        prop_assert_eq!(parsed.prefix.header.minor, minor);
        prop_assert_eq!(parsed.prefix.header.payload_length as usize, payload.len());
        prop_assert_eq!(&parsed.payload, &payload);
        prop_assert_eq!(parsed.to_bytes(), bytes.clone());
        // Streaming prefix reader agrees with the in-memory parser.
        let mut r = &bytes[..];
        let streamed = Prefix::read_from(&mut r, DEFAULT_PREFIX_LIMIT).unwrap();
        prop_assert_eq!(&streamed.commands, &list);
        prop_assert_eq!(r, &payload[..]);
    }

    /// Strict parsing never panics and never accepts a truncated package.
    #[test]
    fn truncation_is_always_an_error((minor, list, payload) in package(), cut in any::<prop::sample::Index>()) {
        let prefix = Prefix::new(minor, list, payload.len() as u32).unwrap();
        let bytes = Package { prefix, payload }.to_bytes();
        let n = cut.index(bytes.len());
        prop_assert!(Package::parse(&bytes[..n]).is_err());
    }
}
