//! `cpekit-xmldsig`: the short-lived helper process that makes and checks
//! voucher signatures with libxmlsec1 for `cpekit` (the agent's SetVouchers,
//! `cpekit voucher sign|verify`), so that `cpekit` itself links no XML-DSig
//! library. One JSON request on standard input, one JSON response line on
//! standard output ([`vouchers::helper`]); exit status 0 when it answered
//! (a refused voucher is an answer), 2 when the request is not one. It
//! reads no file and opens no socket. Not meant to be run by hand.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use vouchers::helper::{Bytes, Request, Response, SignatureReply, MAX_REQUEST_BYTES};
use vouchers::{VerifyError, VerifyVouchers};

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        let arg = std::env::args().nth(1).unwrap_or_default();
        if arg == "--version" {
            println!("cpekit-xmldsig {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        eprintln!("cpekit-xmldsig: the XML-DSig helper of cpekit reads one JSON request on standard input and takes no arguments");
        return ExitCode::from(2);
    }
    let mut stdin = std::io::stdin().lock();
    // The request is the first line (an interactive sign continues on the
    // next), at most MAX_REQUEST_BYTES.
    let mut line = Vec::new();
    let read = (&mut stdin).take(MAX_REQUEST_BYTES as u64 + 1).read_until(b'\n', &mut line);
    if let Err(e) = read {
        return fail(&format!("reading the request: {e}"));
    }
    if line.len() > MAX_REQUEST_BYTES {
        return fail(&format!("the request is larger than {MAX_REQUEST_BYTES} bytes"));
    }
    let request: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => return fail(&format!("not a request: {e}")),
    };
    let response = match request {
        Request::Verify { anchors_pem, vouchers, at } => {
            let anchors: Vec<Vec<u8>> = anchors_pem.into_iter().map(|b| b.0).collect();
            let vouchers: Vec<Vec<u8>> = vouchers.into_iter().map(|b| b.0).collect();
            match xmldsig::InProcess.verify_vouchers(&anchors, &vouchers, at) {
                Ok(v) => Response::Verified { vouchers: v },
                Err(VerifyError::Anchors(error)) => Response::Refused { index: None, error },
                Err(VerifyError::Voucher { index, error }) => Response::Refused { index: Some(index), error },
                Err(VerifyError::Helper(e)) => return fail(&e.to_string()),
            }
        }
        Request::Sign { options, key_pem, cert_pem, chain_pem, algorithm } => {
            let chain: Vec<&[u8]> = chain_pem.iter().map(|c| c.0.as_slice()).collect();
            let signed = match &key_pem {
                Some(key) => xmldsig::sign(&options, &key.0, &cert_pem.0, &chain, algorithm),
                None => {
                    let mut external = |signed_info: &[u8]| -> Result<Vec<u8>, String> { ask_signature(&mut stdin, signed_info) };
                    xmldsig::sign_with(&options, xmldsig::SigningKey::External(&mut external), &cert_pem.0, &chain, algorithm)
                }
            };
            match signed {
                Ok(xml) => Response::Signed { xml },
                Err(error) => Response::Refused { index: None, error },
            }
        }
    };
    if let Err(e) = answer(&response) {
        eprintln!("cpekit-xmldsig: writing the response: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn answer(r: &Response) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, r)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// External signing: the octets go out as a SignRequest, the signature
/// comes back as one SignatureReply line.
fn ask_signature(stdin: &mut impl BufRead, signed_info: &[u8]) -> Result<Vec<u8>, String> {
    answer(&Response::SignRequest { signed_info: Bytes(signed_info.to_vec()) }).map_err(|e| format!("asking for the signature: {e}"))?;
    let mut line = Vec::new();
    stdin.take(1 << 20).read_until(b'\n', &mut line).map_err(|e| format!("reading the signature: {e}"))?;
    match serde_json::from_slice::<SignatureReply>(&line) {
        Ok(SignatureReply::Signature(sig)) => Ok(sig.0),
        Ok(SignatureReply::Error(e)) => Err(e),
        Err(e) => Err(format!("not a signature reply: {e}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("cpekit-xmldsig: {message}");
    ExitCode::from(2)
}
