//! `cpekit package verify`: trusted signer (E.5), every payload hash, and
//! every path as the installer takes it ([`pkgfmt::path`]): a package no
//! CPE would install is not OK.

use anyhow::Result;
use serde_json::json;

use super::{signer_json, trust_anchors};
use crate::cli::VerifyArgs;
use crate::progress::bytes_bar;

pub fn run(a: VerifyArgs) -> Result<u8> {
    let anchors = trust_anchors(&a.trust)?;
    let (prefix, mut reader) = match super::open_package(&a.package, a.dialect.dialect)? {
        super::Opened::AnnexE { prefix, reader, .. } => (prefix, reader),
        super::Opened::TwoWire(d) => return super::dialect::verify(&a, &anchors, d),
    };
    let opts = a.checks.verify_options();
    let report = prefix.verify_signatures(&anchors, &opts);

    // E.5: without a validated signature nothing else matters, but still
    // check the payload so the report is complete.
    let total = prefix.header.payload_length as u64;
    let bar = bytes_bar(total, "verifying");
    let payload = pkgfmt::payload::verify_payload(&mut reader, &prefix.commands, total, |d, _| bar.set_position(d));
    bar.finish_and_clear();

    // The installer's path rules (E.2.1 confinement, Linux limits).
    let paths = pkgfmt::path::check_commands(&prefix.commands);

    let trusted = report.is_trusted();
    let ok = trusted && payload.is_ok() && paths.is_ok();
    if a.output.json {
        let signers: Vec<_> = report
            .signers
            .iter()
            .map(|s| {
                let mut v = signer_json(&s.summary);
                let o = v.as_object_mut().expect("object");
                o.insert("index".into(), json!(s.index));
                match &s.result {
                    Ok(chain) => {
                        o.insert("valid".into(), json!(true));
                        o.insert("chain".into(), json!(chain.subjects));
                    }
                    Err(e) => {
                        o.insert("valid".into(), json!(false));
                        o.insert("error".into(), json!(e.to_string()));
                    }
                }
                v
            })
            .collect();
        let files = match &payload {
            Ok(files) => json!(files.iter().map(|f| json!({"index": f.index, "path": f.path, "sha1": hex::encode(f.sha1)})).collect::<Vec<_>>()),
            Err(_) => json!(null),
        };
        let out = json!({
            "ok": ok,
            "dialect": "annex-e",
            "trusted": trusted,
            "payload_ok": payload.is_ok(),
            "payload_error": payload.as_ref().err().map(|e| e.to_string()),
            "paths_ok": paths.is_ok(),
            "path_error": paths.as_ref().err().map(|e| json!({
                "index": e.index,
                "type": e.command_type,
                "command": e.name,
                "field": e.field,
                "reason": e.reason.to_string(),
                "message": e.to_string(),
            })),
            "signers": signers,
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if report.signers.is_empty() {
            println!("signatures: none (package is unsigned)");
        }
        for s in &report.signers {
            match &s.result {
                Ok(chain) => println!("signer #{}: VALID   {} (chain: {})", s.index, s.summary.subject, chain.subjects.join(" <- ")),
                Err(e) => println!("signer #{}: INVALID {}: {e}", s.index, s.summary.subject),
            }
        }
        match &payload {
            Ok(files) => println!("payload: {} file(s), {} bytes, every SHA-1 matches", files.len(), total),
            Err(e) => println!("payload: FAILED: {e}"),
        }
        match &paths {
            Ok(()) => println!("paths: every path stays inside the install root, within the limits"),
            Err(e) => println!("paths: FAILED: {e}"),
        }
        println!(
            "{}: {}",
            a.package.display(),
            if ok {
                "OK (trusted, payload intact)"
            } else if paths.is_err() {
                "NOT INSTALLABLE (a path no CPE accepts)"
            } else if !trusted {
                "NOT TRUSTED"
            } else {
                "PAYLOAD CORRUPT"
            }
        );
    }
    // A path no CPE accepts is malformed input, whatever the signatures say.
    Ok(match &paths {
        _ if ok => crate::exit::SUCCESS,
        Err(e) => crate::exit::status(foundation::Kind::kind(e)),
        Ok(()) => crate::exit::status(foundation::ErrorKind::VerifyFailed),
    })
}
