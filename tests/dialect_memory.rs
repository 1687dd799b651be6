//! Memory stays flat when a large bzip2-wrapped 2Wire package is verified
//! and extracted (issue 12): the wrapper is decompressed as a stream and
//! the payload goes through a fixed buffer.
//!
//! A 1 GiB (decompressed) package is generated as a stream into `bzip2`,
//! so that only the compressed file (a few hundred KiB: its FILE is mostly
//! zeros) touches the disk; `cpekit package verify` then reads it. The peak
//! resident size of this process's children (`getrusage(RUSAGE_CHILDREN)`:
//! `bzip2 -1` and `cpekit`, the only children of this test binary) must
//! stay far below the package's size. No time is asserted.

use std::io::Write;
use std::process::{Command, Stdio};

use sha1::Digest;

const GIB: u64 = 1 << 30;

fn tlv(kind: u32, value: &[u8]) -> Vec<u8> {
    [&kind.to_be_bytes()[..], &(value.len() as u32).to_be_bytes(), value].concat()
}

/// An extended FILE record (notes §6.1) with a SHA-1 digest.
fn file_record(path: &str, digest: &[u8], offset: u64, size: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0u32, 100, path.len() as u32, 1, 100 + path.len() as u32, 20, offset as u32, size as u32, 100] {
        v.extend(w.to_be_bytes());
    }
    v.extend(offset.to_be_bytes());
    v.extend(size.to_be_bytes());
    v.extend(0o100644u32.to_be_bytes());
    v.extend([0u8; 8]);
    v.extend([0xFF; 36]);
    v.extend(path.as_bytes());
    v.extend(digest);
    v
}

fn max_rss_of_children_kib() -> i64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) }, 0);
    u.ru_maxrss
}

#[test]
fn verifying_a_1_gib_bzip2_package_keeps_memory_flat() {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("big.pkgstream.bz2");
    // The FILE: 1 GiB of zeros with a marker every MiB, hashed as it is written.
    let chunk = |i: u64| -> Vec<u8> {
        let mut c = vec![0u8; 1 << 20];
        c[..8].copy_from_slice(&i.to_be_bytes());
        c
    };
    let mut h = sha1::Sha1::new();
    for i in 0..GIB >> 20 {
        h.update(chunk(i));
    }
    let digest = h.finalize();
    let mut list = tlv(0x2E, b"run");
    list.extend(tlv(1, &file_record("/rwdata/tmp/big.img", &digest, 0, GIB)));
    list.extend(tlv(0, &[]));
    let mut prefix = b"2WIRE_SP\0\0\0\x01\0\0\0\x01".to_vec();
    prefix.extend(((list.len() * 16) as u32).to_be_bytes());
    prefix.extend((GIB as u32).to_be_bytes());
    prefix.extend(list);
    prefix.extend(pkgfmt::signature::EMPTY_SIGNATURE_BLOCK);

    let out = std::fs::File::create(&pkg).unwrap();
    let mut bz = Command::new("bzip2").arg("-1").stdin(Stdio::piped()).stdout(out).spawn().unwrap();
    let mut w = bz.stdin.take().unwrap();
    w.write_all(&prefix).unwrap();
    for i in 0..GIB >> 20 {
        w.write_all(&chunk(i)).unwrap();
    }
    drop(w);
    assert!(bz.wait().unwrap().success());
    let compressed = std::fs::metadata(&pkg).unwrap().len();
    assert!(compressed < 64 << 20, "{compressed}");

    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/ca.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_cpekit")).args(["package", "verify"]).arg(&pkg).arg("--trust").arg(&ca).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["dialect"], "2wire");
    assert_eq!(v["wrapper"], "bzip2");
    assert_eq!(v["payload_ok"], true, "{v}");
    assert_eq!(v["payload"]["present"], GIB);
    assert_eq!(v["trusted"], false, "unsigned");
    let peak_kib = max_rss_of_children_kib();
    eprintln!("1 GiB package ({compressed} bytes bzip2-wrapped): peak RSS of bzip2 and cpekit {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB for a 1 GiB package");
}
