//! A whole dialect package, built here from the notes' facts, read back.

use std::io::{Cursor, Write as _};

use super::payload::digest_of;
use super::*;
use crate::command::metadata::S_IFREG;
use crate::header::RawHeader;
use crate::signature::{load_certs_pem, load_private_key_pem, SignatureBlock};
use crate::{Error, Prefix, DEFAULT_PREFIX_LIMIT};

fn keys(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys").join(name)).unwrap()
}

fn tlv(kind: u32, value: &[u8]) -> Vec<u8> {
    [&kind.to_be_bytes()[..], &(value.len() as u32).to_be_bytes(), value].concat()
}

/// An extended FILE value (notes §6.1).
fn file(path: &str, digest: &Digest, offset: u64, size: u64, mode: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let digest_offset = 100 + path.len() as u32;
    for w in [0, 100, path.len() as u32, digest.algorithm.code(), digest_offset, digest.value.len() as u32, offset as u32, size as u32, 100] {
        v.extend(w.to_be_bytes());
    }
    v.extend(offset.to_be_bytes());
    v.extend(size.to_be_bytes());
    v.extend(mode.to_be_bytes());
    v.extend([0u8; 8]);
    v.extend([0xFF; 36]);
    v.extend(path.as_bytes());
    v.extend(&digest.value);
    v
}

struct Sample {
    bytes: Vec<u8>,
    sparse_file: Vec<u8>,
    payload_base: usize,
}

/// `run`, a version, a SCRIPT, two FILEs (SHA-1, MD5) and a type-47
/// sparse FILE (SHA-256 over the stored blocks), the header's length word
/// 16 × the list's, one signer, trailing PEM certificate.
fn sample(sparse_digest_over_decoded: bool) -> Sample {
    let script = b"#!/bin/sh\necho start\n".to_vec();
    let lib = b"lib.sh contents\n".to_vec();
    let conf = b"config".to_vec();
    let mut sparse_file = vec![0u8; 70_000];
    sparse_file[..5].copy_from_slice(b"HELLO");
    sparse_file[40_000] = 1;
    sparse_file[69_999] = 2;
    let encoded = sparse::SparseDecoder::encode(&sparse_file);
    let mut payload = Vec::new();
    let mut at = |data: &[u8]| {
        let o = payload.len() as u64;
        payload.extend_from_slice(data);
        (o, data.len() as u64)
    };
    let (so, ss) = at(&script);
    let (lo, ls) = at(&lib);
    let (co, cs) = at(&conf);
    let (po, ps) = at(&encoded);
    let sparse_digest = digest_of(DigestAlgorithm::Sha256, if sparse_digest_over_decoded { &sparse_file } else { &encoded });
    let s = Script {
        header_length: 52,
        flags: 0,
        name: "start.sh".into(),
        label: String::new(),
        digest: digest_of(DigestAlgorithm::Sha1, &script),
        payload_offset: so,
        payload_size: ss,
    };
    let mut list = Vec::new();
    list.extend(tlv(0x2E, b"run"));
    list.extend(tlv(0x0A, b"11.5.1.532678"));
    list.extend(tlv(0x26, &s.encode()));
    list.extend(tlv(1, &file("/rwdata/config/lib.sh", &digest_of(DigestAlgorithm::Sha1, &lib), lo, ls, S_IFREG | 0o755)));
    list.extend(tlv(3, &file("/rwdata/config/x.conf", &digest_of(DigestAlgorithm::Md5, &conf), co, cs, S_IFREG | 0o600)));
    list.extend(tlv(0x2F, &file("/rwdata/tmp/disk.img", &sparse_digest, po, ps, S_IFREG | 0o644)));
    list.extend(tlv(0x25, &[0xAA; 12]));
    list.extend(tlv(0, &[]));
    let header = RawHeader { major: 1, minor: 1, command_list_length: list.len() as u32 * 16, payload_length: payload.len() as u32 };
    let mut message = header.to_bytes().to_vec();
    message.extend(&list);
    let key = load_private_key_pem(&keys("signer.key")).unwrap();
    let cert = load_certs_pem(&keys("signer.pem")).unwrap().remove(0);
    let block = SignatureBlock::empty().add_signer(&message, &key, &cert, &[], true).unwrap();
    let mut bytes = message;
    bytes.extend(block.to_der());
    let payload_base = bytes.len();
    bytes.extend(&payload);
    bytes.extend(b"\n");
    bytes.extend(keys("ca.pem"));
    Sample { bytes, sparse_file, payload_base }
}

fn bz(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_whole_sample_plain_and_wrapped() {
    let s = sample(false);
    for (bytes, wrapper) in [(s.bytes.clone(), Wrapper::None), (bz(&s.bytes), Wrapper::Bzip2)] {
        let mut src = Source::from_reader(Cursor::new(bytes)).unwrap();
        let p = DialectPrefix::read_from(&mut src).unwrap();
        assert_eq!(p.wrapper, wrapper);
        assert!(p.terminated);
        assert_eq!(p.records.len(), 8);
        assert_eq!(p.records[0].body, RecordBody::InstallMethod("run".into()));
        assert_eq!(p.records[0].offset, 24);
        assert_eq!(p.length_word(), LengthWord::Sixteenfold);
        assert_eq!(p.payload_base(), s.payload_base as u64);
        assert_eq!(src.position(), s.payload_base as u64, "left at the payload base");
        let mut evidence = vec![Evidence::LengthWord { header: p.header.command_list_length, derived: p.derived_command_list_length() }];
        evidence.push(Evidence::RecordTypes(vec![0x25, 0x26, 0x2E, 0x2F]));
        evidence.push(Evidence::DigestAlgorithms(vec!["MD5", "SHA-256"]));
        if wrapper == Wrapper::Bzip2 {
            evidence.insert(0, Evidence::Bzip2Wrapper);
        }
        assert_eq!(p.evidence, evidence);
        let anchors = load_certs_pem(&keys("ca.pem")).unwrap();
        assert!(p.verify_signatures(&anchors, &Default::default()).is_trusted());

        let mut written: Vec<(usize, u64, Vec<u8>)> = Vec::new();
        let mut ended = Vec::new();
        let r = PayloadPass::run(
            &p,
            &mut src,
            PassMode::Full,
            |w| {
                match w {
                    Write::Data { record, offset, bytes } => written.push((record, offset, bytes.to_vec())),
                    Write::End { record, size, check } => ended.push((record, size, check.ok())),
                }
                Ok(())
            },
            |_, _| {},
        )
        .unwrap();
        assert!(r.all_ok(), "{r:#?}");
        assert_eq!(r.items.len(), 4);
        assert_eq!(r.items.iter().map(|c| c.matched).collect::<Vec<_>>(), vec![Some(Coverage::Stored); 4]);
        assert!(r.items[3].uncertain.is_some() && r.items[0].uncertain.is_none());
        assert_eq!(r.items[3].decoded_size, Some(70_000));
        assert_eq!(ended, vec![(2, 21, true), (3, 16, true), (4, 6, true), (5, 70_000, true)]);
        // The sparse file's runs rebuild it, holes as zeros.
        let mut rebuilt = vec![0u8; 70_000];
        for (_, off, b) in written.iter().filter(|w| w.0 == 5) {
            rebuilt[*off as usize..*off as usize + b.len()].copy_from_slice(b);
        }
        assert_eq!(rebuilt, s.sparse_file);
        assert!(written.iter().filter(|w| w.0 == 5).map(|w| w.2.len()).sum::<usize>() < 40_000, "holes are not written");
        assert_eq!(r.trailing_certificates.len(), 1);
        assert!(r.trailing_certificates[0].subject.contains("cpekit TEST Root CA"));
        assert_eq!(r.trailing_other, 0);
    }
}

#[test]
fn the_other_readings_of_a_type_47_digest_are_found() {
    let s = sample(true);
    let mut src = Source::from_reader(Cursor::new(s.bytes)).unwrap();
    let p = DialectPrefix::read_from(&mut src).unwrap();
    let r = PayloadPass::run(&p, &mut src, PassMode::Full, |_| Ok(()), |_, _| {}).unwrap();
    assert_eq!(r.items[3].matched, Some(Coverage::Decoded));
    assert!(r.items[3].ok());
}

#[test]
fn heads_find_nothing_nested_and_damage_is_reported() {
    let s = sample(false);
    let mut src = Source::from_reader(Cursor::new(s.bytes.clone())).unwrap();
    let p = DialectPrefix::read_from(&mut src).unwrap();
    let r = PayloadPass::run(&p, &mut src, PassMode::Heads, |_| Ok(()), |_, _| {}).unwrap();
    assert_eq!(r.items[1].head, b"lib.sh c");
    assert_eq!(r.items[3].head, b"HELLO", "the first chunk of type-47 data, decoded");
    assert!(r.items.iter().all(|c| c.nested().is_none() && c.computed.is_none()));

    // One flipped payload byte: that record's digest fails.
    let mut bad = s.bytes.clone();
    bad[s.payload_base + 30] ^= 1;
    let mut src = Source::from_reader(Cursor::new(bad)).unwrap();
    let p = DialectPrefix::read_from(&mut src).unwrap();
    let r = PayloadPass::run(&p, &mut src, PassMode::Full, |_| Ok(()), |_, _| {}).unwrap();
    assert_eq!(r.items.iter().map(ItemCheck::ok).collect::<Vec<_>>(), vec![true, false, true, true]);
    // Truncated inside the payload.
    let cut = &s.bytes[..s.payload_base + 40];
    let mut src = Source::from_reader(Cursor::new(cut.to_vec())).unwrap();
    let p = DialectPrefix::read_from(&mut src).unwrap();
    let r = PayloadPass::run(&p, &mut src, PassMode::Full, |_| Ok(()), |_, _| {}).unwrap();
    assert!(!r.all_ok());
    assert!(r.items[3].problem.as_deref().unwrap().starts_with("truncated"), "{:?}", r.items[3]);
}

#[test]
fn installers_refuse_the_dialect_by_name() {
    for bytes in [sample(false).bytes, bz(&sample(false).bytes)] {
        let e = Prefix::read_conformant(&mut Cursor::new(bytes), DEFAULT_PREFIX_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "not an Annex E package: 2Wire dialect detected; install refuses non-conformant packages");
        let Error::NotAnnexE { reason, .. } = &e else { panic!("{e}") };
        assert!(std::error::Error::source(&e).is_some());
        // The strict parser's own reason: the header's word (16 × 602) read
        // as a length runs into the payload, where no SignedData is; a
        // wrapped file has no preamble.
        assert!(matches!(reason.kind, crate::ParseErrorKind::Signature(_) | crate::ParseErrorKind::BadPreamble { .. }), "{reason}");
    }
    // A damaged Annex E package stays a parse error.
    let e = Prefix::read_conformant(&mut Cursor::new(b"2WIRE_SP\0\0\0\x02".to_vec()), DEFAULT_PREFIX_LIMIT).unwrap_err();
    assert!(matches!(e, Error::Parse(_)), "{e}");
}

/// Every prefix of a sample, and every single-byte change in its prefix,
/// is read or refused with a typed error, never a panic.
#[test]
fn hostile_prefixes_never_panic() {
    let s = sample(false);
    for n in (0..s.payload_base + 10).step_by(7) {
        let mut src = Source::from_reader(Cursor::new(s.bytes[..n].to_vec())).unwrap();
        if let Ok(p) = DialectPrefix::read_from(&mut src) {
            let _ = PayloadPass::run(&p, &mut src, PassMode::Full, |_| Ok(()), |_, _| {});
        }
    }
    for i in (0..s.payload_base).step_by(3) {
        let mut b = s.bytes.clone();
        b[i] ^= 0x80;
        let mut src = Source::from_reader(Cursor::new(b)).unwrap();
        if let Ok(p) = DialectPrefix::read_from(&mut src) {
            let _ = p.warnings();
            let _ = PayloadPass::run(&p, &mut src, PassMode::Full, |_| Ok(()), |_, _| {});
        }
    }
    // A huge record length is refused before anything is allocated for it.
    let mut b = RawHeader { major: 1, minor: 0, command_list_length: 0, payload_length: 0 }.to_bytes().to_vec();
    b.extend(tlv(0x26, &[]));
    b[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = DialectPrefix::read_from(&mut Source::from_reader(Cursor::new(b)).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Parse(p) if matches!(p.kind, crate::ParseErrorKind::RecordTooLong { .. })));
}

/// What fuzz/fuzz_targets/dialect.rs checks, for one input.
fn exercise(input: &[u8]) {
    let _ = Prefix::read_conformant(&mut &input[..], DEFAULT_PREFIX_LIMIT);
    for mode in [PassMode::Heads, PassMode::Full] {
        let Ok(mut source) = Source::from_reader(input) else { return };
        let Ok(prefix) = DialectPrefix::read_from(&mut source) else { return };
        assert_eq!(source.position(), prefix.payload_base());
        assert_eq!(prefix.signed_message().len() as u64, prefix.command_list_end());
        let _ = prefix.warnings();
        let _ = prefix.verify_signatures(&[], &Default::default());
        let items = prefix.items();
        if let Ok(r) = PayloadPass::run(&prefix, &mut source, mode, |_| Ok(()), |done, total| assert!(done <= total)) {
            assert_eq!(r.items.len(), items.len());
            assert!(r.region_present <= r.payload_length);
        }
    }
}

mod mutations {
    use proptest::prelude::*;

    use super::*;

    fn base() -> &'static [u8] {
        static S: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        S.get_or_init(|| sample(false).bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random overwrites, truncations and insertions of a whole sample
        /// (the fuzz target's checks; the fuzz target runs them at scale).
        #[test]
        fn mutated_samples_never_panic(edits in proptest::collection::vec((0usize..1400, any::<u8>()), 1..8), cut in 0usize..200_000, insert in any::<bool>()) {
            let mut b = base().to_vec();
            for (at, v) in edits {
                let at = at % b.len();
                if insert { b.insert(at, v) } else { b[at] = v }
            }
            b.truncate(cut.max(24));
            exercise(&b);
        }
    }
}
