//! `cpekit voucher ...`: a thin CLI over the `vouchers` crate. Signatures
//! are made and checked by the `cpekit-xmldsig` helper process (installed
//! beside `cpekit`; `$CPEKIT_XMLDSIG` overrides), so `cpekit` links no
//! XML-DSig library; `inspect` needs none.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use vouchers::helper::SignError;
use vouchers::option::{format_date, parse_date};
use vouchers::{DeviceId, DurationUnits, Helper, Mode, SignAlgorithm, VerifiedVoucher, VerifyError, VerifyVouchers, VoucherOption};

use crate::cli::{VoucherCommand, VoucherInspectArgs, VoucherSignArgs, VoucherVerifyArgs};
use crate::exit::{malformed, usage, verify_failed};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsFile {
    option: Vec<OptionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionSpec {
    vserial_num: String,
    option_ident: String,
    #[serde(default)]
    option_desc: String,
    start_date: Option<String>,
    duration: Option<u32>,
    duration_units: Option<String>,
    mode: String,
    #[serde(default)]
    transferable: bool,
    device_id: DeviceSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSpec {
    #[serde(default)]
    manufacturer: String,
    oui: String,
    product_class: String,
    serial_number: String,
}

fn option_from_spec(s: OptionSpec) -> Result<VoucherOption> {
    let duration = match (s.duration, s.duration_units.as_deref()) {
        (Some(n), Some("Days")) => Some((n, DurationUnits::Days)),
        (Some(n), Some("Months")) => Some((n, DurationUnits::Months)),
        (None, None) => None,
        (_, u) => return Err(malformed(format!("option {}: duration needs duration_units Days or Months (got {u:?})", s.option_ident))),
    };
    Ok(VoucherOption {
        vserial_num: s.vserial_num,
        device_id: DeviceId {
            manufacturer: s.device_id.manufacturer,
            oui: s.device_id.oui.to_uppercase(),
            product_class: s.device_id.product_class,
            serial_number: s.device_id.serial_number,
        },
        option_ident: s.option_ident,
        option_desc: s.option_desc,
        start_date: s.start_date.as_deref().map(parse_date).transpose()?,
        duration,
        mode: Mode::parse(&s.mode)?,
        transferable: s.transferable,
    })
}

fn option_json(o: &VoucherOption) -> Value {
    json!({
        "vserial_num": o.vserial_num,
        "device_id": {
            "manufacturer": o.device_id.manufacturer,
            "oui": o.device_id.oui,
            "product_class": o.device_id.product_class,
            "serial_number": o.device_id.serial_number,
        },
        "option_ident": o.option_ident,
        "option_desc": o.option_desc,
        "start_date": o.start_date.map(format_date),
        "duration": o.duration.map(|d| d.0),
        "duration_units": o.duration.map(|d| d.1.as_str()),
        "mode": o.mode.as_str(),
        "transferable": o.transferable,
    })
}

fn voucher_json(v: &VerifiedVoucher) -> Value {
    json!({
        "signer": v.signer,
        "signature_method": v.signature_method,
        "options": v.options.iter().map(option_json).collect::<Vec<_>>(),
    })
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

pub fn run(cmd: VoucherCommand) -> Result<u8> {
    match cmd {
        VoucherCommand::Sign(a) => sign(a),
        VoucherCommand::Verify(a) => verify(a),
        VoucherCommand::Inspect(a) => inspect(a),
    }
}

fn sign(a: VoucherSignArgs) -> Result<u8> {
    let text = std::fs::read_to_string(&a.options).with_context(|| format!("reading {}", a.options.display()))?;
    let file: OptionsFile = toml::from_str(&text).map_err(|e| malformed(format!("{}: {e}", a.options.display())))?;
    let options = file.option.into_iter().map(option_from_spec).collect::<Result<Vec<_>>>()?;
    let [(key, cert)] = a.signer.pairs()?[..] else { return Err(usage("voucher sign takes one --key/--cert pair")) };
    // Keys and certificates in any form cpekit reads, handed to xmlsec as
    // unencrypted PEM (in memory only).
    let pem_certs = |p: &Path| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for c in crate::keys::read_certs(p)? {
            out.extend(x509_cert::der::EncodePem::to_pem(&c, x509_cert::der::pem::LineEnding::LF).map_err(|e| malformed(e.to_string()))?.into_bytes());
        }
        Ok(out)
    };
    let chain = a.signer.chain.as_deref().map(pem_certs).transpose()?;
    let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let alg = if a.sha256 { SignAlgorithm::RsaSha256 } else { SignAlgorithm::RsaSha1 };
    let pass = a.signer.pass.as_deref().map(crate::keys::read_pass).transpose()?;
    let cert_pem = pem_certs(cert)?;
    let signer_cert = crate::keys::read_certs(cert)?.remove(0);
    crate::keys::warn_if_outside_validity(&signer_cert);
    let xml = if crate::pkcs11::is_uri(key) {
        // The key stays in the token: it signs the canonical SignedInfo.
        let token = crate::pkcs11::open(&key.to_string_lossy(), a.signer.pkcs11_module.as_deref(), pass.as_deref())?;
        let spki = x509_cert::der::Encode::to_der(&signer_cert.tbs_certificate.subject_public_key_info).map_err(|e| malformed(e.to_string()))?;
        let cert_key = <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&spki).ok();
        if cert_key.as_ref() != Some(&pkgfmt::signature::RsaSha1Signer::public_key(&token)?) {
            return Err(malformed(format!("the token key does not match certificate {}", signer_cert.tbs_certificate.subject)));
        }
        let mut sign = |m: &[u8]| -> Result<Vec<u8>, String> {
            match alg {
                SignAlgorithm::RsaSha1 => pkgfmt::signature::RsaSha1Signer::sign_sha1(&token, m),
                SignAlgorithm::RsaSha256 => token.sign_sha256(m),
            }
            .map_err(|e| e.to_string())
        };
        helper_sign(&options, None, &cert_pem, &chain, alg, Some(&mut sign))?
    } else {
        let private = crate::keys::read_private_key(key, pass.as_deref())?;
        let key_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&private, rsa::pkcs8::LineEnding::LF).map_err(|e| malformed(e.to_string()))?;
        helper_sign(&options, Some(key_pem.as_bytes()), &cert_pem, &chain, alg, None)?
    };
    let out = if a.base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()) + "\n"
    } else {
        xml
    };
    crate::package::atomic_write(&a.output, |f| {
        use std::io::Write;
        f.write_all(out.as_bytes())?;
        Ok(())
    })?;
    eprintln!("signed {} option(s) into {}", options.len(), a.output.display());
    Ok(crate::exit::SUCCESS)
}

/// Sign through the helper; its refusals are the vouchers crate's errors.
fn helper_sign(
    options: &[VoucherOption],
    key_pem: Option<&[u8]>,
    cert_pem: &[u8],
    chain: &[&[u8]],
    alg: SignAlgorithm,
    external: Option<&mut vouchers::helper::ExternalSigner<'_>>,
) -> Result<String> {
    match Helper::locate(None).sign(options, key_pem, cert_pem, chain, alg, external) {
        Ok(xml) => Ok(xml),
        Err(SignError::Voucher(e)) => Err(e.into()),
        Err(SignError::Helper(e)) => Err(e.into()),
    }
}

fn verify(a: VoucherVerifyArgs) -> Result<u8> {
    let now = match &a.now {
        Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|e| usage(format!("--now {t:?}: {e}")))?,
        None => OffsetDateTime::now_utc(),
    };
    let mut anchors = Vec::new();
    for t in &a.trust.trust {
        anchors.push(read(t)?);
    }
    let voucher = read(&a.file)?;
    let v = match Helper::locate(None).verify_vouchers(&anchors, std::slice::from_ref(&voucher), a.now.as_ref().map(|_| now)) {
        Ok(mut v) => v.remove(0),
        // The same errors (and exit codes) as a verification in process.
        Err(VerifyError::Anchors(e) | VerifyError::Voucher { error: e, .. }) => return Err(e.into()),
        Err(VerifyError::Helper(e)) => return Err(e.into()),
    };
    for o in &v.options {
        if !o.device_id.matches(&a.oui, &a.product_class, &a.serial) {
            return Err(verify_failed(format!(
                "Request Denied (9001): option {} is for device {}-{}-{}",
                o.option_ident, o.device_id.oui, o.device_id.product_class, o.device_id.serial_number
            )));
        }
        if let Some(exp) = vouchers::store::expiration(o, now) {
            if exp <= now {
                return Err(verify_failed(format!("option {} expired at {}", o.option_ident, format_date(exp))));
            }
        }
    }
    if a.output.json {
        let mut j = voucher_json(&v);
        j["ok"] = json!(true);
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!("voucher OK: signed by {}", v.signer.as_deref().unwrap_or("?"));
        for o in &v.options {
            println!("  {} ({}): {}", o.option_ident, o.vserial_num, o.mode.as_str());
        }
    }
    Ok(crate::exit::SUCCESS)
}

fn inspect(a: VoucherInspectArgs) -> Result<u8> {
    let v = vouchers::inspect(&read(&a.file)?)?;
    if a.output.json {
        println!("{}", serde_json::to_string_pretty(&voucher_json(&v))?);
    } else {
        println!("signer (NOT verified): {}", v.signer.as_deref().unwrap_or("none"));
        println!("signature method: {}", v.signature_method);
        for o in &v.options {
            println!("option {}: {} [{}]", o.option_ident, o.mode.as_str(), o.vserial_num);
            println!("    device {} {} {} {}", o.device_id.manufacturer, o.device_id.oui, o.device_id.product_class, o.device_id.serial_number);
            if let Some(s) = o.start_date {
                println!("    start {}", format_date(s));
            }
            if let Some((n, u)) = o.duration {
                println!("    duration {n} {}", u.as_str());
            }
            println!("    transferable {}; {}", o.transferable, o.option_desc);
        }
    }
    Ok(crate::exit::SUCCESS)
}
