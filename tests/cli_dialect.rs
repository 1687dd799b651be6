//! The 2Wire `.pkgstream` dialect in `package inspect|dump|verify|extract`
//! (issue 12), on a sample built here, byte by byte, from the public notes
//! (../shared/reference/2wire-pkgstream-notes.md): the one published
//! header exactly, the 11.5.1 install's payload layout (§8), FILE records
//! in the extended form with modes, SCRIPT records, a type-47 sparse file,
//! a nested package, trailing PEM, three signers made with `openssl` (one
//! an engineering signer with an expired, MD5-signed 1024-bit
//! certificate), and a bzip2-wrapped copy made with `bzip2`.
//!
//! The sample is built without cpekit's reader: the test writes the bytes
//! and checks what the reader says about them.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::sync::OnceLock;

use serde_json::Value;
use sha1::Digest;

#[path = "support/cli.rs"]
mod cli;
use cli::cpekit;

/// notes §3: "Verbatim hex dump (the only one in the repo)".
const PUBLISHED_HEADER: [u8; 24] = [
    0x32, 0x57, 0x49, 0x52, 0x45, 0x5f, 0x53, 0x50, // '2WIRE_SP'
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x51, 0x30, 0x01, 0xe9, 0xba, 0x61,
];
/// notes §3 [DERIVED]: the real command list is 5,395 bytes.
const LIST_LEN: usize = 5395;
/// notes §3: payload length word 0x01E9BA61.
const PAYLOAD_LEN: u64 = 32_094_817;

fn run(cmd: &mut Proc) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Proc::new("openssl").current_dir(dir).args(args));
}

fn be32(v: u64) -> [u8; 4] {
    (v as u32).to_be_bytes()
}

fn tlv(kind: u32, value: &[u8]) -> Vec<u8> {
    [&kind.to_be_bytes()[..], &be32(value.len() as u64), value].concat()
}

fn sha1(d: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(d).to_vec()
}

fn md5(d: &[u8]) -> Vec<u8> {
    md5::Md5::digest(d).to_vec()
}

fn sha256(d: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(d).to_vec()
}

/// notes §6.1, the extended form: Table 69's eight words, header length
/// 100, 64-bit offset and size, mode, uid, gid, three {u64, u32} times,
/// then path and digest.
fn file_record(path: &str, hash_type: u32, digest: &[u8], offset: u64, size: u64, mode: u32) -> Vec<u8> {
    let (uid, gid) = (0u32, 0u32);
    let mut v = Vec::new();
    let digest_offset = 100 + path.len() as u64;
    for w in [0, 100, path.len() as u64, hash_type as u64, digest_offset, digest.len() as u64, offset, size, 100] {
        v.extend(be32(w));
    }
    v.extend(offset.to_be_bytes());
    v.extend(size.to_be_bytes());
    v.extend(mode.to_be_bytes());
    v.extend(uid.to_be_bytes());
    v.extend(gid.to_be_bytes());
    for (secs, nanos) in [(1_600_000_000u64, 0u32), (1_600_000_001, 5), (u64::MAX, u32::MAX)] {
        v.extend(secs.to_be_bytes());
        v.extend(nanos.to_be_bytes());
    }
    assert_eq!(v.len(), 100);
    v.extend(path.as_bytes());
    v.extend(digest);
    v
}

/// notes §6.2: nine words, 64-bit payload offset and size, then name, label, digest.
fn script_record(name: &str, label: &str, digest: &[u8], offset: u64, size: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let name_offset = 52u64;
    let label_offset = name_offset + name.len() as u64;
    let digest_offset = label_offset + label.len() as u64;
    for w in [52, 0, name_offset, name.len() as u64, label_offset, label.len() as u64, 1, digest_offset, digest.len() as u64] {
        v.extend(be32(w));
    }
    v.extend(offset.to_be_bytes());
    v.extend(size.to_be_bytes());
    v.extend(name.as_bytes());
    v.extend(label.as_bytes());
    v.extend(digest);
    v
}

/// notes §11: type-47 data, 32 KiB blocks, each a big-endian length and
/// that many octets. Block 0 holds 100 octets, block 1 is full, the
/// middle blocks hold one octet each and the last block the rest, so
/// that the encoding is exactly `encoded_len` octets. Returns the
/// encoding and the decoded file.
fn sparse(encoded_len: usize) -> (Vec<u8>, Vec<u8>) {
    let head = 4 + 100 + 4 + 32768;
    let rest = encoded_len - head;
    let middle = rest.saturating_sub(4 + 32768).div_ceil(5);
    let last = rest - 5 * middle - 4;
    assert!((1..=32768).contains(&last), "{last}");
    let mut lens = vec![100usize, 32768];
    lens.extend(std::iter::repeat_n(1, middle));
    lens.push(last);
    let (mut enc, mut file) = (Vec::new(), Vec::new());
    for (i, len) in lens.iter().enumerate() {
        let data: Vec<u8> = (0..*len).map(|k| (k * 7 + i) as u8 | 1).collect();
        enc.extend(be32(*len as u64));
        enc.extend(&data);
        file.resize(i * 32768, 0);
        file.extend(&data);
    }
    assert_eq!(enc.len(), encoded_len);
    (enc, file)
}

/// The test PKI: the device's engineering root and its 1024-bit,
/// MD5-signed engineering leaf that expired on 2017-01-17 (notes §7), a
/// production root and intermediate with two production leaves, and an
/// emergency authority whose certificate is appended after the payload.
fn pki(dir: &Path) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\npolicy = p\nunique_subject = no\n\
         [p]\ncommonName = supplied\norganizationName = optional\norganizationalUnitName = optional\n\
         [leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
         [ca_ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    let root = |name: &str, subj: &str| {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                subj,
                "-days",
                "3650",
                "-sha256",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    };
    let issue = |name: &str, ca: &str, subj: &str, bits: &str, md: &str, dates: Option<(&str, &str)>, ext: &str| {
        openssl(dir, &["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}"), "-out", &format!("{name}.key")]);
        openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-subj", subj, "-out", &format!("{name}.csr")]);
        let mut args = vec!["ca", "-batch", "-config", "ca.cnf", "-cert", &format!("{ca}.pem"), "-keyfile", &format!("{ca}.key")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(["-in", &format!("{name}.csr"), "-out", &format!("{name}.pem"), "-md", md, "-extensions", ext, "-notext"].map(String::from));
        match dates {
            Some((from, to)) => args.extend(["-startdate", from, "-enddate", to].map(String::from)),
            None => args.extend(["-days", "3650"].map(String::from)),
        }
        openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    root("eng-root", "/CN=Gateway Engineering Root Cert - V1");
    issue("eng", "eng-root", "/CN=eng2.2sp.certs.2wire.com", "1024", "md5", Some(("20140117000000Z", "20170117000000Z")), "leaf");
    root("prod-root", "/OU=Certification Authority - G1/O=2Wire Inc TEST");
    issue("prod-int", "prod-root", "/CN=Gateway Intermediate CA - V1", "2048", "sha256", None, "ca_ext");
    issue("prod1", "prod-int", "/CN=prod1.2sp.certs.2wire.com TEST", "2048", "sha256", None, "leaf");
    issue("prod2", "prod-int", "/CN=prod2.2sp.certs.2wire.com TEST", "2048", "sha256", None, "leaf");
    root("emergency", "/CN=2Wire Gateway Emergency Authority - G1 TEST");
}

/// Sign `[0, P)` with the three signers (detached PKCS#7, SHA-1, signed attributes).
fn sign(dir: &Path, message: &[u8], signers: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("msg.bin"), message).unwrap();
    let mut args: Vec<String> = ["cms", "-sign", "-binary", "-md", "sha1", "-outform", "DER", "-in", "msg.bin", "-out", "sig.der", "-certfile", "prod-int.pem"]
        .map(String::from)
        .to_vec();
    for s in signers {
        args.extend(["-signer".into(), format!("{s}.pem"), "-inkey".into(), format!("{s}.key")]);
    }
    openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::read(dir.join("sig.der")).unwrap()
}

/// The nested package (an `att_cms-certs`-like carrier, notes §1, §8, §10):
/// method "config", one placeholder SCRIPT, signed by the engineering signer.
fn nested(dir: &Path) -> Vec<u8> {
    let body = b"# placeholder\n".to_vec();
    let mut list = tlv(0x2E, b"run");
    list.extend(tlv(0x1B, b"config"));
    list.extend(tlv(0x26, &script_record("certs.sh", "", &sha1(&body), 0, body.len() as u64)));
    list.extend(tlv(0, &[]));
    let mut msg = [&b"2WIRE_SP"[..], &be32(1), &be32(1), &be32(list.len() as u64 * 16), &be32(body.len() as u64)].concat();
    msg.extend(list);
    let sig = sign(dir, &msg, &["eng"]);
    [msg, sig, body].concat()
}

struct Sample {
    dir: tempfile::TempDir,
    /// The plain package.
    pkg: PathBuf,
    /// The same, wrapped by `bzip2`.
    bz: PathBuf,
    /// The decoded type-47 file.
    sparse_file: Vec<u8>,
    rootimage: Vec<u8>,
    scripts: Vec<(String, Vec<u8>)>,
    payload_base: usize,
    rootimage_at: usize,
}

/// The payload items, in the 11.5.1 install's order (notes §8): name,
/// record kind, contents.
enum Kind {
    File { path: &'static str, kind: u32, hash_type: u32, mode: u32 },
    Script { name: &'static str, label: &'static str },
}

fn build() -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let pattern = |n: usize, seed: u8| -> Vec<u8> { (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect() };
    let mut rootimage = pattern(26_775_552, 3);
    rootimage[..4].copy_from_slice(b"hsqs");
    let post = b"#!/bin/sh\n# post-write hook: sync the file just written\nsync\n"[..57].to_vec();
    let nested = nested(d);
    let items: Vec<(Kind, Vec<u8>)> = vec![
        (Kind::File { path: "/rwdata/config/lib.sh", kind: 1, hash_type: 1, mode: 0o100755 }, pattern(28_420, 1)),
        (Kind::Script { name: "start.sh", label: "" }, pattern(1_576, 2)),
        (Kind::Script { name: "error.sh", label: "error" }, pattern(300, 4)),
        (Kind::File { path: "/rwdata/tmp/sys2/rootimage.img", kind: 1, hash_type: 1, mode: 0o100644 }, rootimage.clone()),
        (Kind::Script { name: "post.sh", label: "post-write" }, post.clone()),
        (Kind::File { path: "/rwdata/tmp/sys2/ui.img", kind: 1, hash_type: 1, mode: 0o100644 }, pattern(1_380_352, 5)),
        (Kind::Script { name: "post.sh", label: "post-write" }, post.clone()),
        (Kind::File { path: "/rwdata/tmp/sys2/uImage", kind: 1, hash_type: 1, mode: 0o100644 }, pattern(3_740_549, 6)),
        (Kind::Script { name: "post.sh", label: "post-write" }, post.clone()),
        (Kind::File { path: "/rwdata/tmp/sys2/component.txt", kind: 3, hash_type: 2, mode: 0o100600 }, pattern(47, 7)),
        (Kind::Script { name: "post.sh", label: "post-write" }, post.clone()),
        (Kind::File { path: "/rwdata/tmp/sys2/md5sums.txt", kind: 1, hash_type: 1, mode: 0o100644 }, pattern(178, 8)),
        (Kind::File { path: "/rwdata/tmp/pkg1/att_cms-certs.pkgstream", kind: 1, hash_type: 1, mode: 0o100644 }, nested),
        (Kind::File { path: "/rwdata/tmp/sys2/deferred_upg.sh", kind: 1, hash_type: 1, mode: 0o100755 }, pattern(1_538, 9)),
        (Kind::Script { name: "finish.sh", label: "" }, pattern(1_862, 10)),
    ];
    let used: usize = items.iter().map(|(_, b)| b.len()).sum();
    let (encoded, sparse_file) = sparse(PAYLOAD_LEN as usize - used);

    let mut list = Vec::new();
    list.extend(tlv(0x2E, b"run"));
    list.extend(tlv(0x0A, b"11.5.1.532678"));
    list.extend(tlv(0x0B, b"att_install"));
    list.extend(tlv(0x1A, b"firmware"));
    list.extend(tlv(0x20, b"260-2106,260-2169"));
    list.extend(tlv(0x27, &[0x27; 24]));
    list.extend(tlv(0x07, &[0x07; 32]));
    let mut payload = Vec::new();
    let mut scripts = Vec::new();
    for (kind, body) in &items {
        let offset = payload.len() as u64;
        match kind {
            Kind::File { path, kind, hash_type, mode } => {
                let digest = if *hash_type == 2 { md5(body) } else { sha1(body) };
                list.extend(tlv(*kind, &file_record(path, *hash_type, &digest, offset, body.len() as u64, *mode)));
                list.extend(tlv(0x25, &[0x25; 16]));
            }
            Kind::Script { name, label } => {
                list.extend(tlv(0x26, &script_record(name, label, &sha1(body), offset, body.len() as u64)));
                scripts.push((name.to_string(), body.clone()));
            }
        }
        payload.extend(body);
    }
    let offset = payload.len() as u64;
    list.extend(tlv(0x2F, &file_record("/rwdata/tmp/sys2/sparse.img", 3, &sha256(&encoded), offset, encoded.len() as u64, 0o100640)));
    payload.extend(&encoded);
    list.extend(tlv(0x3E8, b"dpi"));
    // Pad with a WIRE_25 record to the published list length, then End.
    let pad = LIST_LEN - list.len() - 8 - 8;
    list.extend(tlv(0x25, &vec![0; pad]));
    list.extend(tlv(0, &[]));
    assert_eq!(list.len(), LIST_LEN);
    assert_eq!(payload.len() as u64, PAYLOAD_LEN);

    let mut message = PUBLISHED_HEADER.to_vec();
    message.extend(&list);
    let sig = sign(d, &message, &["eng", "prod1", "prod2"]);
    let pkg = d.join("att-5268-11.5.1.532678_prod_lightspeed-install.pkgstream");
    let mut f = std::fs::File::create(&pkg).unwrap();
    f.write_all(&message).unwrap();
    f.write_all(&sig).unwrap();
    f.write_all(&payload).unwrap();
    // Older drops append PEM certificates (notes §7).
    f.write_all(&std::fs::read(d.join("emergency.pem")).unwrap()).unwrap();
    drop(f);
    run(Proc::new("bzip2").args(["-k", "-1"]).arg(&pkg));
    let bz = d.join("att-5268-11.5.1.532678_prod_lightspeed-install.pkgstream.bz2");
    let payload_base = message.len() + sig.len();
    let rootimage_at = payload_base + 30_296;
    Sample { dir, pkg, bz, sparse_file, rootimage, scripts, payload_base, rootimage_at }
}

fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(build)
}

fn json(args: &[&str], pkg: &Path) -> (Value, std::process::Output) {
    // The package first: --trust takes any number of files.
    let out = cpekit().args(&args[..2]).arg(pkg).args(&args[2..]).arg("--json").output().unwrap();
    let v =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    (v, out)
}

fn key(name: &str) -> String {
    sample().dir.path().join(name).display().to_string()
}

#[test]
fn the_sample_starts_with_the_published_header() {
    let s = sample();
    let bytes = std::fs::read(&s.pkg).unwrap();
    assert_eq!(bytes[..24], PUBLISHED_HEADER);
    // notes §3: "From that prose the next 11 bytes would be ..."
    assert_eq!(bytes[24..35], [0x00, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x03, 0x72, 0x75, 0x6e]);
    assert_eq!(&std::fs::read(&s.bz).unwrap()[..3], b"BZh");
}

#[test]
fn inspect_reads_every_field() {
    let s = sample();
    for (pkg, wrapper) in [(&s.pkg, "none"), (&s.bz, "bzip2")] {
        let (v, out) = json(&["package", "inspect"], pkg);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(v["dialect"], "2wire");
        assert_eq!(v["wrapper"], wrapper);
        let reason = v["dialect_reason"].as_str().unwrap();
        assert!(reason.starts_with("not Annex E (") && reason.contains("command list length 86320 is not less than 2^16") == (wrapper == "none"), "{reason}");
        assert!(reason.contains("16x, as in the published header"), "{reason}");
        let h = &v["header"];
        assert_eq!((h["major"].as_u64(), h["minor"].as_u64()), (Some(1), Some(1)));
        assert_eq!(h["command_list_length_word"], 86_320);
        assert_eq!(h["command_list_length_derived"], LIST_LEN);
        assert_eq!(h["command_list_length_relation"], "16x");
        assert_eq!(h["payload_length"], PAYLOAD_LEN);
        assert_eq!(v["command_list_end"], 24 + LIST_LEN);
        assert_eq!(v["signature_offset"], 24 + LIST_LEN);
        assert_eq!(v["payload_offset"], s.payload_base);
        assert_eq!(v["terminated"], true);

        let r = v["records"].as_array().unwrap();
        let r0 = &r[0];
        assert_eq!((r0["index"].as_u64(), r0["offset"].as_u64(), r0["type"].as_u64()), (Some(0), Some(24), Some(46)));
        assert_eq!(r0["name"], "RUN");
        assert_eq!(r0["install_method"], "run");
        assert_eq!(r0["confidence"], serde_json::json!(["DOC"]));
        assert!(r0["meaning"].as_str().unwrap().contains("install-method tag"));
        assert_eq!(r[1]["name"], "SIGNATURE");
        assert_eq!(r[1]["text"], "11.5.1.532678");
        assert!(r[1]["meaning"].as_str().unwrap().starts_with("version string"));
        assert_eq!((r[2]["name"].as_str(), r[2]["text"].as_str()), (Some("KEY_VALUE"), Some("att_install")));
        assert_eq!((r[3]["name"].as_str(), r[3]["text"].as_str()), (Some("METADATA"), Some("firmware")));
        assert_eq!((r[4]["name"].as_str(), r[4]["text"].as_str()), (Some("WIRE_20"), Some("260-2106,260-2169")));
        assert_eq!((r[5]["name"].as_str(), r[5]["hex"].as_str()), (Some("PATH_27"), Some("27".repeat(24).as_str())));
        assert_eq!((r[6]["name"].as_str(), r[6]["hex"].as_str()), (Some("CONFIG"), Some("07".repeat(32).as_str())));
        // The first FILE (lib.sh) and its companion record.
        let f = &r[7];
        assert_eq!((f["type"].as_u64(), f["name"].as_str()), (Some(1), Some("FILE")));
        assert_eq!(f["confidence"], serde_json::json!(["DOC", "CODE", "DECOMP"]));
        let ff = &f["file"];
        assert_eq!(ff["path"], "/rwdata/config/lib.sh");
        assert_eq!(ff["form"], "extended");
        assert_eq!(ff["header_length"], 100);
        assert_eq!(ff["write"], "create or truncate");
        assert_eq!((ff["hash_type"].as_u64(), ff["hash_algorithm"].as_str()), (Some(1), Some("SHA-1")));
        assert_eq!((ff["data_offset"].as_u64(), ff["data_size"].as_u64()), (Some(0), Some(28_420)));
        assert_eq!(ff["mode_word"], "100755");
        assert_eq!(ff["metadata"]["mode"], "0755");
        assert_eq!((ff["metadata"]["uid"].as_u64(), ff["metadata"]["gid"].as_u64()), (Some(0), Some(0)));
        assert_eq!(ff["metadata"]["mtime"]["seconds"], 1_600_000_001u64);
        assert_eq!((r[8]["name"].as_str(), r[8]["hex"].as_str()), (Some("WIRE_25"), Some("25".repeat(16).as_str())));
        // SCRIPT records: name, phase label, digest, 64-bit range.
        let sc = &r[9]["script"];
        assert_eq!(r[9]["name"], "SCRIPT");
        assert_eq!((sc["name"].as_str(), sc["label"].as_str(), sc["phase"].as_str()), (Some("start.sh"), Some(""), Some("runs when closed")));
        assert_eq!((sc["payload_offset"].as_u64(), sc["payload_size"].as_u64()), (Some(28_420), Some(1_576)));
        assert_eq!(sc["hash"], hex::encode(sha1(&s.scripts[0].1)));
        assert_eq!(r[10]["script"]["phase"], "queued under \"error\"");
        // rootimage.img at the published absolute offset 43,788 less the base 13,492.
        assert_eq!(r[11]["file"]["path"], "/rwdata/tmp/sys2/rootimage.img");
        assert_eq!(r[11]["file"]["data_offset"], 30_296);
        assert_eq!(r[11]["file"]["hash"], hex::encode(sha1(&s.rootimage)));
        // component.txt: type 3 with an MD5 digest.
        let c = r.iter().find(|x| x["file"]["path"] == "/rwdata/tmp/sys2/component.txt").unwrap();
        assert_eq!((c["type"].as_u64(), c["file"]["write"].as_str()), (Some(3), Some("create only if absent")));
        assert_eq!(c["file"]["hash_algorithm"], "MD5");
        assert_eq!(c["file"]["metadata"]["mode"], "0600");
        // The type-47 sparse file.
        let sp = r.iter().find(|x| x["type"] == 47).unwrap();
        assert_eq!(sp["name"], "PATH_FILE");
        assert_eq!(sp["confidence"], serde_json::json!(["DECOMP", "DERIVED"]));
        assert_eq!((sp["file"]["write"].as_str(), sp["file"]["hash_algorithm"].as_str()), (Some("sparse (32 KiB blocks)"), Some("SHA-256")));
        let dpi = r.iter().find(|x| x["type"] == 1000).unwrap();
        assert_eq!((dpi["name"].as_str(), dpi["hex"].as_str()), (Some("DPI_SIG"), Some("647069")));
        let end = r.last().unwrap();
        assert_eq!((end["type"].as_u64(), end["name"].as_str(), end["offset"].as_u64()), (Some(0), Some("PREFIX_END"), Some(24 + LIST_LEN as u64 - 8)));

        let sigs = v["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 3);
        assert_eq!(sigs[0]["subject"], "CN=eng2.2sp.certs.2wire.com");
        assert_eq!((sigs[0]["key_bits"].as_u64(), sigs[0]["certificate_signature_algorithm"].as_str()), (Some(1024), Some("md5WithRSAEncryption")));
        assert!(sigs[0]["not_after"].as_str().unwrap().starts_with("2017-01-17"), "{}", sigs[0]["not_after"]);
        assert!(sigs.iter().all(|s| s["digest"] == "SHA-1"));

        let items = v["payload"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 16);
        let nested: Vec<_> = items.iter().filter(|i| !i["nested"].is_null()).collect();
        assert_eq!(nested.len(), 1);
        assert_eq!((nested[0]["name"].as_str(), nested[0]["nested"].as_str()), (Some("/rwdata/tmp/pkg1/att_cms-certs.pkgstream"), Some("2wire")));
        let certs = v["trailer"]["certificates"].as_array().unwrap();
        assert_eq!(certs.len(), 1);
        assert!(certs[0]["subject"].as_str().unwrap().contains("Emergency Authority"));
        assert_eq!(certs[0]["trusted"], false);
        assert_eq!(certs[0]["offset"], s.payload_base as u64 + PAYLOAD_LEN);
        assert_eq!(v["trailer"]["other_bytes"], 0);
    }
}

#[test]
fn inspect_human_output_says_which_reader_and_names_records() {
    let s = sample();
    let out = cpekit().args(["package", "inspect"]).arg(&s.pkg).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("dialect:        2wire (not Annex E ("), "{text}");
    assert!(text.contains("header word 86320 (0x00015130) | derived 5395 (0x00001513)"), "{text}");
    assert!(text.contains("RUN            [DOC]"), "{text}");
    assert!(text.contains("46 RUN [DOC]: install-method tag"), "{text}");
    assert!(text.contains("att_cms-certs.pkgstream holds a nested package; --recursive descends"), "{text}");
    assert!(text.contains("reported, not trusted"), "{text}");
    // Forced strict reading fails as before.
    let out = cpekit().args(["package", "inspect", "--dialect", "annex-e"]).arg(&s.pkg).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command list length 86320 is not less than 2^16 (E.3)"));
}

#[test]
fn inspect_recursive_descends_into_the_nested_package() {
    let s = sample();
    for pkg in [&s.pkg, &s.bz] {
        let out = cpekit().args(["package", "inspect", "--recursive", "--json"]).arg(pkg).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let item = v["payload"]["items"].as_array().unwrap().iter().find(|i| i["nested"] == "2wire").unwrap();
        let n = &item["package"];
        assert_eq!(n["dialect"], "2wire", "{n}");
        assert_eq!(n["records"][1]["name"], "WIRE_1B");
        assert_eq!(n["records"][1]["text"], "config");
        assert_eq!(n["records"][2]["script"]["name"], "certs.sh");
        assert_eq!(n["signatures"][0]["subject"], "CN=eng2.2sp.certs.2wire.com");
    }
}

#[test]
fn dump_annotates_dialect_fields() {
    let s = sample();
    let out = cpekit().args(["package", "dump"]).arg(&s.pkg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "00000010  00 01 51 30",
        "Command list length word (derived length 5395: 16x)",
        "00000018  00 00 00 2e",
        "[0] Type (RUN [DOC]) = 46",
        "[0] Text \"run\"",
        "[7] Header Length (extended form) = 100",
        "[7] File Offset (64-bit) = 0",
        "[7] Mode = 0o100755",
        "[7] Path \"/rwdata/config/lib.sh\"",
        "[9] Name \"start.sh\"",
        "[9] Payload Size (64-bit) = 1576",
        "[5] Value (24 bytes, layout unknown (notes §6))",
        "## signature block",
        "signer #2: CN=prod2.2sp.certs.2wire.com TEST",
    ] {
        assert!(text.contains(needle), "{needle:?} not in dump:\n{text}");
    }
}

#[test]
fn verify_reports_every_signer_and_digest() {
    let s = sample();
    for pkg in [&s.pkg, &s.bz] {
        let out = cpekit().args(["package", "verify", "--trust", &key("prod-root.pem"), "--trust", &key("eng-root.pem"), "--json"]).arg(pkg).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((v["ok"].as_bool(), v["trusted"].as_bool(), v["payload_ok"].as_bool()), (Some(true), Some(true), Some(true)));
        let sg = v["signers"].as_array().unwrap();
        assert_eq!(sg.len(), 3);
        assert_eq!(sg[0]["trusted"], false);
        assert!(sg[0]["reason"].as_str().unwrap().contains("expired"), "{}", sg[0]["reason"]);
        assert_eq!(sg[0]["weaknesses"], serde_json::json!(["1024-bit RSA key", "certificate signed with md5WithRSAEncryption"]));
        for p in &sg[1..] {
            assert_eq!(p["trusted"], true, "{p}");
            assert_eq!(p["chain"].as_array().unwrap().last().unwrap(), "O=2Wire Inc TEST,OU=Certification Authority - G1");
            assert!(p["reason"].as_str().unwrap().starts_with("chains to the trust anchor"));
        }
        let items = v["items"].as_array().unwrap();
        assert!(items.iter().all(|i| i["ok"] == true), "{items:#?}");
        let sp = items.iter().find(|i| i["kind"] == "file (sparse (32 KiB blocks))").unwrap();
        assert_eq!(sp["covers"], "stored-bytes");
        assert!(sp["uncertain"].as_str().unwrap().contains("not documented"));
        assert_eq!(sp["decoded_size"], s.sparse_file.len());
        assert_eq!(v["trailer"]["certificates"][0]["trusted"], false);
    }
    // Trusting the engineering root only: its signer expired.
    let (v, out) = json(&["package", "verify", "--trust", &key("eng-root.pem")], &s.pkg);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["trusted"], false);
    assert!(v["signers"][1]["reason"].as_str().unwrap().contains("does not reach a trust anchor"), "{}", v["signers"][1]);
    // Ignoring time, its certificate's MD5 signature still keeps it untrusted.
    let (v, out) = json(&["package", "verify", "--ignore-time", "--trust", &key("eng-root.pem")], &s.pkg);
    assert_eq!(out.status.code(), Some(1));
    assert!(v["signers"][0]["reason"].as_str().unwrap().contains("md5WithRSAEncryption"), "{}", v["signers"][0]);
    // The trailing certificate is never an anchor: trusting nothing else fails.
    let (v, _) = json(&["package", "verify", "--trust", &key("emergency.pem")], &s.pkg);
    assert_eq!(v["trusted"], false);
}

#[test]
fn verify_finds_a_damaged_payload_and_a_tampered_list() {
    let s = sample();
    let t = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&s.pkg).unwrap();
    bytes[s.rootimage_at + 1_000_000] ^= 1;
    let bad = t.path().join("bad.pkgstream");
    std::fs::write(&bad, &bytes).unwrap();
    let (v, out) = json(&["package", "verify", "--trust", &key("prod-root.pem")], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!((v["trusted"].as_bool(), v["payload_ok"].as_bool()), (Some(true), Some(false)));
    let broken: Vec<_> = v["items"].as_array().unwrap().iter().filter(|i| i["ok"] == false).collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["name"], "/rwdata/tmp/sys2/rootimage.img");
    // A changed version string breaks every signature.
    let mut bytes = std::fs::read(&s.pkg).unwrap();
    let at = bytes.windows(13).position(|w| w == b"11.5.1.532678").unwrap();
    bytes[at] = b'9';
    std::fs::write(&bad, &bytes).unwrap();
    let (v, out) = json(&["package", "verify", "--trust", &key("prod-root.pem")], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(v["signers"].as_array().unwrap().iter().all(|s| s["reason"].as_str().unwrap().contains("modified")), "{v}");
}

#[test]
fn extract_writes_files_sparse_scripts_and_a_manifest() {
    let s = sample();
    for pkg in [&s.pkg, &s.bz] {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("tree");
        let o = cpekit().args(["package", "extract"]).arg(pkg).arg("-o").arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lib = out.join("rwdata/config/lib.sh");
        assert_eq!(std::fs::metadata(&lib).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(std::fs::read(out.join("rwdata/tmp/sys2/rootimage.img")).unwrap(), s.rootimage);
        assert_eq!(std::fs::metadata(out.join("rwdata/tmp/sys2/component.txt")).unwrap().mode() & 0o7777, 0o600);
        // The nested package is written as it is.
        assert_eq!(&std::fs::read(out.join("rwdata/tmp/pkg1/att_cms-certs.pkgstream")).unwrap()[..8], b"2WIRE_SP");
        // Type 47: decoded, sparse.
        let img = out.join("rwdata/tmp/sys2/sparse.img");
        assert_eq!(std::fs::read(&img).unwrap(), s.sparse_file);
        let m = std::fs::metadata(&img).unwrap();
        assert_eq!(m.len(), s.sparse_file.len() as u64);
        assert!(m.blocks() * 512 < m.len() / 2, "holes are holes: {} blocks for {} bytes", m.blocks(), m.len());
        assert_eq!(m.mode() & 0o7777, 0o640);
        // Scripts, numbered, never executed.
        let names: Vec<String> = {
            let mut n: Vec<String> = std::fs::read_dir(out.join("_scripts")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            n.sort();
            n
        };
        assert_eq!(names, ["00-start.sh", "01-error.sh", "02-post.sh", "03-post.sh", "04-post.sh", "05-post.sh", "06-finish.sh"]);
        assert_eq!(std::fs::read(out.join("_scripts/00-start.sh")).unwrap(), s.scripts[0].1);
        assert_eq!(std::fs::metadata(out.join("_scripts/00-start.sh")).unwrap().mode() & 0o111, 0, "scripts are not made executable");
        // manifest.json describes every record.
        let m: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["dialect"], "2wire");
        assert_eq!(m["header"]["command_list_length_derived"], LIST_LEN);
        let records = m["records"].as_array().unwrap();
        assert_eq!(records.len(), inspect_record_count(pkg));
        let with_payload: Vec<_> = records.iter().filter(|r| !r["payload"].is_null()).collect();
        assert_eq!(with_payload.len(), 16);
        assert!(with_payload.iter().all(|r| r["payload"]["result"] == "written"), "{with_payload:#?}");
        let sp = records.iter().find(|r| r["type"] == 47).unwrap();
        assert_eq!(sp["payload"]["output"], "rwdata/tmp/sys2/sparse.img");
        assert_eq!(records[9]["payload"]["output"], "_scripts/00-start.sh");
    }
}

fn inspect_record_count(pkg: &Path) -> usize {
    json(&["package", "inspect"], pkg).0["records"].as_array().unwrap().len()
}

#[test]
fn install_refuses_the_dialect() {
    let s = sample();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for pkg in [&s.pkg, &s.bz] {
        let out = cpekit().arg("install").arg(pkg).arg("--root").arg(&root).args(["--trust", &key("prod-root.pem")]).output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not an Annex E package: 2Wire dialect detected; install refuses non-conformant packages"), "{err}");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "nothing installed");
    }
}

#[test]
fn annex_e_packages_still_read_as_annex_e() {
    let t = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pkg = t.path().join("demo.pkg");
    cpekit().args(["package", "build", "--manifest"]).arg(root.join("testdata/demo/manifest.toml")).arg("-o").arg(&pkg).assert().success();
    let (v, out) = json(&["package", "inspect"], &pkg);
    assert!(out.status.success());
    assert_eq!(v["dialect"], "annex-e");
    // Read with the dialect reader on request: the same records, nothing marks it as the dialect.
    let (v, out) = json(&["package", "inspect", "--dialect", "2wire"], &pkg);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["dialect"], "2wire");
    assert_eq!(v["evidence"], serde_json::json!([]));
    assert_eq!(v["header"]["command_list_length_relation"], "exact");
}

/// The man pages of the four read-only commands document the dialect and its limits.
#[test]
fn man_pages_document_the_dialect() {
    let man = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man");
    for cmd in ["inspect", "dump", "verify", "extract"] {
        let page = std::fs::read_to_string(man.join(format!("cpekit-package-{cmd}.1"))).unwrap();
        for needle in ["THE 2WIRE DIALECT", "\\-\\-dialect", "Limits: no real sample is public", "install refuses non\\-conformant packages"] {
            assert!(page.contains(needle), "cpekit-package-{cmd}.1 lacks {needle:?}");
        }
    }
    let inspect = std::fs::read_to_string(man.join("cpekit-package-inspect.1")).unwrap();
    assert!(inspect.contains("\\-\\-recursive"));
    let extract = std::fs::read_to_string(man.join("cpekit-package-extract.1")).unwrap();
    assert!(extract.contains("_scripts/NN\\-name") && extract.contains("manifest.json"));
}

/// A package in a bzip2-wrapped package in a package: `--recursive`
/// follows every level, unwrapping as it goes.
#[test]
fn inspect_recursive_follows_several_levels() {
    fn carrier(method: &[u8], path: &str, body: &[u8]) -> Vec<u8> {
        let mut list = tlv(0x2E, b"run");
        list.extend(tlv(0x1B, method));
        list.extend(tlv(1, &file_record(path, 1, &sha1(body), 0, body.len() as u64, 0o100644)));
        list.extend(tlv(0, &[]));
        let mut p = [&b"2WIRE_SP"[..], &be32(1), &be32(1), &be32(list.len() as u64 * 16), &be32(body.len() as u64)].concat();
        p.extend(list);
        p.extend(pkgfmt::signature::EMPTY_SIGNATURE_BLOCK);
        p.extend(body);
        p
    }
    let t = tempfile::tempdir().unwrap();
    let innermost = carrier(b"innermost", "/etc/leaf.txt", b"leaf\n");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&carrier(b"middle", "/pkg/inner.pkgstream", &innermost)).unwrap();
    let middle = bz.finish().unwrap();
    let outer = t.path().join("outer.pkgstream");
    std::fs::write(&outer, carrier(b"outer", "/pkg/middle.pkgstream.bz2", &middle)).unwrap();
    let out = cpekit().args(["package", "inspect", "--recursive", "--json"]).arg(&outer).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["payload"]["items"][0];
    assert_eq!(m["nested"], "bzip2");
    let m = &m["package"];
    assert_eq!((m["wrapper"].as_str(), m["records"][1]["text"].as_str()), (Some("bzip2"), Some("middle")), "{m}");
    let i = &m["payload"]["items"][0]["package"];
    assert_eq!((i["wrapper"].as_str(), i["records"][1]["text"].as_str()), (Some("none"), Some("innermost")), "{i}");
    assert_eq!(i["records"][2]["file"]["path"], "/etc/leaf.txt");
}
