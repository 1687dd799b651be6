//! Each malformed-package case gives an error naming the problem, with the
//! byte offset and (inside the command list) the command index.

use pkgfmt::*;
use sha1::{Digest, Sha1};

fn sample() -> Vec<u8> {
    let payload = b"hello, world".to_vec();
    let sha1 = Sha1::digest(&payload).into();
    let list = CommandList::new(vec![
        Command::Version("1.0".into()),
        Command::ExtractFile(FileCommand { flags: 0, path: "/a".into(), sha1, file_offset: 0, file_length: 12, metadata: None }),
        Command::Reboot,
    ]);
    Package { prefix: Prefix::new(0, list, 12).unwrap(), payload }.to_bytes()
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Offset of command #1's Value: header 24 + Version TLV (8 + 3) + TLV 8.
const FILE_VALUE: usize = 24 + 11 + 8;

fn err(b: &[u8]) -> ParseError {
    Package::parse(b).unwrap_err()
}

#[test]
fn sample_is_valid() {
    Package::parse(&sample()).unwrap();
}

#[test]
fn bad_preamble() {
    let mut b = sample();
    b[7] = b'Q';
    let e = err(&b);
    assert!(matches!(e.kind, ParseErrorKind::BadPreamble { .. }));
    assert!(e.to_string().contains("bad preamble"), "{e}");
}

#[test]
fn major_2() {
    let mut b = sample();
    set_u32(&mut b, 8, 2);
    let e = err(&b);
    assert_eq!(e.kind, ParseErrorKind::UnsupportedMajor(2));
    assert!(e.to_string().contains("major version 2"), "{e}");
}

#[test]
fn truncated_anywhere() {
    let b = sample();
    for n in 0..b.len() {
        let e = err(&b[..n]);
        assert!(matches!(e.kind, ParseErrorKind::Truncated { .. } | ParseErrorKind::Signature(_)), "cut at {n}: {e}");
    }
}

#[test]
fn command_list_length_overruns_file() {
    let mut b = sample();
    set_u32(&mut b, 16, 60000);
    let e = err(&b);
    assert!(matches!(e.kind, ParseErrorKind::Truncated { what: "command list", .. }), "{e}");
}

#[test]
fn path_offset_outside() {
    let mut b = sample();
    set_u32(&mut b, FILE_VALUE + 4, 1000);
    let e = err(&b);
    assert_eq!(e.command_index, Some(1));
    assert_eq!(e.offset, (FILE_VALUE + 1000) as u64);
    assert!(matches!(e.kind, ParseErrorKind::FieldOutOfBounds { field: "Path", .. }), "{e}");
}

#[test]
fn hash_length_outside() {
    let mut b = sample();
    set_u32(&mut b, FILE_VALUE + 16, 40); // hash offset past the value
    let e = err(&b);
    assert!(matches!(e.kind, ParseErrorKind::FieldOutOfBounds { field: "Hash", .. }), "{e}");
}

#[test]
fn payload_offset_outside() {
    let mut b = sample();
    set_u32(&mut b, FILE_VALUE + 24, 5); // file offset 5 + length 12 > 12
    let e = err(&b);
    assert_eq!(e.command_index, Some(1));
    assert!(matches!(e.kind, ParseErrorKind::PayloadOutOfBounds { .. }), "{e}");
    let mut b = sample();
    set_u32(&mut b, FILE_VALUE + 28, u32::MAX);
    assert!(matches!(err(&b).kind, ParseErrorKind::PayloadOutOfBounds { .. }));
}

#[test]
fn unknown_hash_type() {
    let mut b = sample();
    set_u32(&mut b, FILE_VALUE + 12, 2);
    let e = err(&b);
    assert_eq!(e.kind, ParseErrorKind::UnsupportedHashType(2));
    assert!(e.to_string().contains("command #1 (type 1, Extract File)"), "{e}");
}

#[test]
fn command_length_overruns_list() {
    let mut b = sample();
    set_u32(&mut b, 24 + 4, 500);
    let e = err(&b);
    assert_eq!(e.command_index, Some(0));
    assert!(matches!(e.kind, ParseErrorKind::CommandOverrun { .. }), "{e}");
}

#[test]
fn trailing_bytes_after_payload() {
    let mut b = sample();
    b.push(0);
    assert!(matches!(err(&b).kind, ParseErrorKind::TrailingBytes { .. }));
}

#[test]
fn hash_mismatch_in_payload() {
    let mut b = sample();
    let n = b.len();
    b[n - 1] ^= 1;
    let pkg = Package::parse(&b).unwrap();
    let mut v = PayloadVerifier::new(&pkg.prefix.commands, 12);
    let e = v.update(&pkg.payload).unwrap_err();
    assert!(matches!(e, Error::HashMismatch { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("/a"), "{e}");
}

#[test]
fn prefix_limit_is_enforced_before_allocation() {
    let b = sample();
    let e = Prefix::read_from(&mut &b[..], 40).unwrap_err();
    assert!(e.to_string().contains("prefix limit"), "{e}");
}

#[test]
fn short_garbage_reports_the_preamble() {
    let e = Prefix::read_from(&mut &b"hello"[..], DEFAULT_PREFIX_LIMIT).unwrap_err();
    assert!(e.to_string().contains("bad preamble"), "{e}");
    let e = Prefix::read_from(&mut &b"2WIRE"[..], DEFAULT_PREFIX_LIMIT).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
}
