//! Seed corpora for the agent fuzz targets, from real messages made by the
//! code under test (run by scripts/fuzz-agent; fuzz/corpus is not
//! committed):
//!   cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus
//! soap_parse: every CWMP message (the codec's encoder, as sent on the wire,
//! with header fields), several envelopes in one body, the 3.5 empty Body.
//! http_auth: our own challenge, the RFC 2617 3.5 example, Basic, and the
//! matching Authorization values. request_head: Connection Requests (with
//! and without Digest credentials), LAN kicks and progress pages.
//! voucher_option: Option elements as `VoucherOption::to_xml` writes them.
//! voucher_verify: the fixture voucher (fuzz_targets/voucher_fixture.rs)
//! in each input mode (whole, Base64, after KeyInfo, after
//! SignatureValue, Options to sign), and equivalent forms of its Objects.
//! install_plan: command lists naming the scratch tree's paths.
use std::path::{Path, PathBuf};
use std::time::Instant;

use agent::digest::{self, Algorithm, Challenge, Server};
use agent::soap::samples::{samples, NASTY};
use agent::soap::*;
use pkgfmt::{Command, CommandList, EntryKind, FileCommand, FileMetadata, FilesystemEntry, MoveCommand, RemoveCommand};
use vouchers::{DeviceId as VDeviceId, DurationUnits, Mode, SignAlgorithm, VoucherOption};

#[path = "../fuzz_targets/voucher_fixture.rs"]
mod voucher_fixture;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create corpus directory");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));

    // soap_parse
    for (i, b) in samples().iter().enumerate() {
        let header = Header { id: Some(format!("id-{i}")), hold_requests: i % 3 == 0, no_more_requests: i % 2 == 0 };
        write(&dir, "soap_parse", &format!("{i:02}-{}.xml", b.method()), to_xml_with(&header, b).as_bytes());
    }
    let a = to_xml(Some("1"), false, &Body::GetRPCMethods);
    let b = to_xml(None, true, &Body::InformResponse { max_envelopes: 1 });
    write(&dir, "soap_parse", "multi.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{a}\r\n<?xml version=\"1.0\"?>{b}").as_bytes());
    let empty = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap:Header><cwmp:ID soap:mustUnderstand=\"1\">7</cwmp:ID><cwmp:HoldRequests soap:mustUnderstand=\"1\">true</cwmp:HoldRequests></soap:Header><soap:Body/></soap:Envelope>";
    write(&dir, "soap_parse", "empty-body.xml", empty.as_bytes());

    // http_auth: lines are realm, user, password, uri, then more header values.
    let now = Instant::now();
    let mut server = Server::new("cpekit").expect("random opaque");
    let ours = server.challenge(now, false).expect("random nonce");
    let stale = server.challenge(now, true).expect("random nonce");
    let rfc =
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let placeholder =
        Challenge { realm: "cpekit".into(), nonce: "{nonce}".into(), opaque: Some("{opaque}".into()), qop_auth: true, algorithm: Algorithm::Md5, stale: false };
    let auth = digest::digest_authorization(&placeholder, "GET", "/cr/0123", "acs", "s3cret", 1, "0a4f113b");
    let sess = Challenge { qop_auth: false, algorithm: Algorithm::Md5Sess, ..placeholder.clone() };
    let auth2069 = digest::digest_authorization(&sess, "GET", "/cr/0123", "acs", "s3cret", 1, "0a4f113b");
    let basic = digest::basic_authorization("acs", "s3cret");
    let seeds = [
        ("challenge", format!("{ours}\nacs\ns3cret\n/cr/0123")),
        ("stale", format!("{stale}\nuser\npass\n/acs")),
        ("rfc2617", format!("testrealm@host.com\nMufasa\nCircle Of Life\n/dir/index.html\n{rfc}")),
        ("basic", format!("Basic realm=\"acs\"\nacs\ns3cret\n/\n{basic}")),
        ("several", format!("Negotiate, Basic realm=\"x\", Digest realm=\"y\", nonce=\"n\", algorithm=MD5-sess, qop=\"auth-int,auth\"\n{rfc}")),
        ("authorization", format!("cpekit\nacs\ns3cret\n/cr/0123\n{auth}")),
        ("authorization-2069", format!("cpekit\nacs\ns3cret\n/cr/0123\n{auth2069}")),
    ];
    for (name, s) in seeds {
        write(&dir, "http_auth", name, s.as_bytes());
    }

    // request_head
    let heads = [
        ("cr-401", "GET /cr/0123 HTTP/1.1\r\nHost: 192.0.2.1:7547\r\nUser-Agent: acs\r\n\r\n".to_string()),
        ("cr-auth", format!("GET /cr/0123 HTTP/1.1\r\nHost: 192.0.2.1:7547\r\nAuthorization: {auth}\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")),
        ("cr-http10", "GET /cr/0123?ts=1&id=2 HTTP/1.0\r\nConnection: close\r\n\r\nGET /cr/0123 HTTP/1.1\r\n".to_string()),
        ("lan-kick", "GET /kick?command=activate&arg=A%20B+c&next=%2Fsecurity%2Findex.html HTTP/1.1\r\nHost: 192.168.1.1:8080\r\nReferer: http://192.168.1.1:8080/\r\n\r\n".to_string()),
        ("lan-kick-abs", "GET /kick?next=https%3A%2F%2Facs.example%2Fx%3Fa%3D%C3%BC&command=x HTTP/1.1\r\nHost: lan\r\n\r\n".to_string()),
        ("lan-progress", "HEAD /progress.json HTTP/1.1\r\nHost: lan\r\nAccept: */*\r\n\r\n".to_string()),
        ("post", "POST /cr/0123 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()),
    ];
    for (name, s) in heads {
        write(&dir, "request_head", name, s.as_bytes());
    }

    // voucher_option (Figure 5, and what to_xml writes)
    let fig5 = "<Option><VSerialNum>987654321</VSerialNum><DeviceId><Manufacturer>2Wire</Manufacturer><OUI>00D09E</OUI><ProductClass>Gateway</ProductClass><SerialNumber>123456789</SerialNumber></DeviceId><OptionIdent>Option Name</OptionIdent><OptionDesc>Option Description</OptionDesc><StartDate>20021025T12:06:34</StartDate><Duration>280</Duration><DurationUnits>Days</DurationUnits><Mode>EnableWithExpiration</Mode></Option>";
    write(&dir, "voucher_option", "figure5.xml", fig5.as_bytes());
    let opt = VoucherOption {
        vserial_num: "1002".into(),
        device_id: VDeviceId { manufacturer: NASTY.into(), oui: "00d09e".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() },
        option_ident: "ParentalControl".into(),
        option_desc: NASTY.into(),
        start_date: Some(vouchers::option::parse_date("2026-01-01T00:00:00+02:00").expect("date")),
        duration: Some((12, DurationUnits::Months)),
        mode: Mode::EnableWithoutExpiration,
        transferable: true,
    };
    write(&dir, "voucher_option", "to_xml.xml", opt.to_xml().as_bytes());

    // voucher_verify: first byte = mode (see fuzz_targets/voucher_verify.rs).
    let signed = xmldsig::sign(&voucher_fixture::options(), voucher_fixture::KEY, voucher_fixture::CERT, &[], SignAlgorithm::RsaSha1).expect("sign");
    let after = |tag: &str| &signed[signed.find(tag).expect("tag") + tag.len()..];
    let seed = |mode: u8, rest: &str| [&[mode][..], rest.as_bytes()].concat();
    write(&dir, "voucher_verify", "0-whole.xml", &seed(0, &signed));
    use base64::Engine;
    write(&dir, "voucher_verify", "0-base64", &seed(4, &base64::engine::general_purpose::STANDARD.encode(&signed)));
    let objects = after("</KeyInfo>");
    write(&dir, "voucher_verify", "1-objects.xml", &seed(1, objects));
    // The same canonical bytes: a comment in a text node, a character reference, reordered Objects.
    write(&dir, "voucher_verify", "1-comment.xml", &seed(1, &objects.replacen("<VSerialNum>1001", "<VSerialNum>10<!--x-->01", 1)));
    write(&dir, "voucher_verify", "1-charref.xml", &seed(1, &objects.replacen("<OUI>00D09E", "<OUI>&#48;0D09E", 1)));
    if let Some(i) = objects.find("<dsig:Object") {
        if let Some(j) = objects[i + 1..].find("<dsig:Object").map(|j| j + i + 1) {
            let end = objects.rfind("</Signature>").expect("end");
            let swapped = format!("{}{}{}{}", &objects[..i], &objects[j..end], &objects[i..j], &objects[end..]);
            write(&dir, "voucher_verify", "1-reordered.xml", &seed(1, &swapped));
        }
    }
    write(&dir, "voucher_verify", "3-keyinfo.xml", &seed(3, after("</SignatureValue>")));
    let two: String = voucher_fixture::options().iter().map(VoucherOption::to_xml).collect();
    write(&dir, "voucher_verify", "2-sign-sha1.xml", &seed(2, &two));
    write(&dir, "voucher_verify", "2-sign-sha256.xml", &seed(6, &format!("{fig5}{}", opt.to_xml())));

    // install_plan: paths of the scratch tree (fuzz_targets/install_plan.rs).
    let file = |path: &str| FileCommand { flags: 0, path: path.into(), sha1: [0; 20], file_offset: 0, file_length: 4, metadata: None };
    let rm = |path: &str| RemoveCommand { flags: 0, path: path.into() };
    let mv = |src: &str, dst: &str| MoveCommand { flags: 0, src: src.into(), dst: dst.into() };
    let entry = |path: &str, kind: EntryKind| FilesystemEntry { flags: 0, path: path.into(), kind, metadata: FileMetadata::default() };
    let lists: Vec<(&str, Vec<Command>)> = vec![
        (
            "files",
            vec![
                Command::Version("1.2.4".into()),
                Command::ExtractFile(file("etc/config")),
                Command::AddFile(file("etc/new/deep/file")),
                Command::AddFile(file("bin/tool")),
                Command::Reboot,
                Command::End,
            ],
        ),
        (
            "versioned",
            vec![
                Command::ExtractVersionedFile(file("etc/app.003")),
                Command::AddVersionedFile(file("etc/app.004")),
                Command::RemoveVersionedFile(rm("etc/app.000")),
                Command::MoveVersionedFile(mv("etc/app.xyz", "etc/app.cur")),
            ],
        ),
        (
            "remove-move",
            vec![
                Command::RemoveFile(rm("top.txt")),
                Command::RemoveSubTree(rm("var/log")),
                Command::MoveFile(mv("etc/config", "var/log/old/config")),
                Command::MoveFile(mv("bin/tool", "bin/tool/x")),
                Command::AddFile(file("var/log/old/messages")),
            ],
        ),
        (
            "links",
            vec![
                Command::FilesystemEntry(entry("opt/l", EntryKind::Symlink { target: "../etc".into() })),
                Command::AddFile(file("opt/l/x")),
                Command::FilesystemEntry(entry("lib/modules", EntryKind::Directory)),
                Command::FilesystemEntry(entry("up", EntryKind::Symlink { target: "a/../../etc".into() })),
            ],
        ),
        (
            "through-symlinks",
            vec![
                Command::ExtractFile(file("lnk/config")),
                Command::ExtractFile(file("escape/passwd")),
                Command::RemoveFile(rm("dangling")),
                Command::ExtractFile(file("dangling")),
            ],
        ),
        (
            "format",
            vec![
                Command::RemoveFile(rm("etc/config")),
                Command::FormatFileSystem,
                Command::ExtractFile(file("etc/config")),
                Command::ExtractVersionedFile(file("etc/app.001")),
                Command::Reboot,
            ],
        ),
    ];
    for (name, commands) in lists {
        write(&dir, "install_plan", name, &CommandList { commands, trailer: Vec::new() }.encode());
    }
}
