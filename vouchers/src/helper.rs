//! Voucher signatures in a short-lived helper process.
//!
//! libxmlsec1 brings libxml2 (with ICU) and OpenSSL's XML-DSig glue: ~5 MiB
//! of mapped text that a device agent idling between sessions should not
//! carry for a message it may never receive. The signature work therefore
//! lives in a second, small binary, `cpekit-xmldsig` (the `cpekit-xmldsig`
//! package: the only one that links libxmlsec1), installed beside `cpekit`.
//! The agent's SetVouchers and `cpekit voucher sign|verify` run it once per
//! request, with one JSON [`Request`] on its standard input and one JSON
//! [`Response`] line on its standard output; the errors are the very
//! [`VoucherError`]s an in-process verification returns, so the CWMP faults
//! and exit codes do not depend on where the work ran.
//!
//! The helper is found ([`Helper::locate`]) at a configured path, else at
//! `$CPEKIT_XMLDSIG`, else beside the running executable. It runs with a
//! deadline and bounded output ([`foundation::subprocess`]), in its own
//! process group, with `PR_SET_NO_NEW_PRIVS` (an exec can never gain
//! privileges), no core dumps, and an address-space limit. It reads no file:
//! the trust anchors travel in the request, so an agent running as root may
//! also run it under an unprivileged user ([`Helper::run_as`]).
//!
//! [`VerifyVouchers`] is the seam: the agent takes any verifier; the binary
//! gives it a [`Helper`], tests may give it the in-process one from the
//! `cpekit-xmldsig` library.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dsig::{SignAlgorithm, VerifiedVoucher};
use crate::option::VoucherOption;
use crate::VoucherError;

/// The helper binary's file name.
pub const HELPER_NAME: &str = "cpekit-xmldsig";
/// Environment variable naming the helper binary (overrides the search
/// beside the running executable; a configured path overrides it).
pub const HELPER_ENV: &str = "CPEKIT_XMLDSIG";
/// The most a request may carry: 32 vouchers of 64 KiB in Base64 and the
/// anchors, with room to spare. The helper refuses more.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;
/// The most a response may carry (the Options of 32 vouchers, or one
/// signed voucher); more is a protocol error.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Bytes on the wire: Base64 in JSON (a PEM file or a voucher need not be UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        use base64::Engine;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(s).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// What the helper is asked to do (one JSON object on its standard input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Verify every voucher (XML or its Base64, as received) against the
    /// PEM trust anchors, in order, stopping at the first one refused.
    Verify {
        anchors_pem: Vec<Bytes>,
        vouchers: Vec<Bytes>,
        /// Time for certificate validity; `None`: now.
        #[serde(with = "time::serde::rfc3339::option")]
        at: Option<OffsetDateTime>,
    },
    /// Sign the Options into one voucher (Figure 6). Without `key_pem` the
    /// key is kept by the caller: the helper answers
    /// [`Response::SignRequest`] with the canonical SignedInfo, and reads
    /// one [`SignatureReply`] line before it answers [`Response::Signed`].
    Sign { options: Vec<VoucherOption>, key_pem: Option<Bytes>, cert_pem: Bytes, chain_pem: Vec<Bytes>, algorithm: SignAlgorithm },
}

/// The helper's answer: one JSON line on its standard output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Every voucher verified: the Options as read from the digested bytes.
    Verified { vouchers: Vec<VerifiedVoucher> },
    /// Voucher `index` was refused (`None`: the trust anchors, or signing).
    Refused { index: Option<usize>, error: VoucherError },
    /// The signed voucher.
    Signed { xml: String },
    /// External signing: sign these canonical SignedInfo octets.
    SignRequest { signed_info: Bytes },
}

/// The caller's answer to [`Response::SignRequest`] (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureReply {
    /// RSASSA-PKCS1-v1_5 over the octets with the algorithm's digest.
    Signature(Bytes),
    /// The key could not sign: the helper fails with [`VoucherError::Key`].
    Error(String),
}

/// Signs the canonical SignedInfo octets for [`Helper::sign`] when the key
/// is kept by the caller (a PKCS#11 token); an error is a message.
pub type ExternalSigner<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// Why a set of vouchers was not verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The trust anchors could not be loaded.
    #[error("voucher trust anchors: {0}")]
    Anchors(#[source] VoucherError),
    /// Voucher `index` (0-based, in request order) was refused.
    #[error("voucher {index}: {error}")]
    Voucher {
        index: usize,
        #[source]
        error: VoucherError,
    },
    /// The verifier itself failed (the helper did not run or answer).
    #[error(transparent)]
    Helper(#[from] HelperError),
}

/// The helper process did not run or did not answer as the protocol says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("voucher helper {}: {message}", path.display())]
pub struct HelperError {
    pub path: PathBuf,
    pub message: String,
}

impl foundation::Kind for HelperError {
    fn kind(&self) -> foundation::ErrorKind {
        foundation::ErrorKind::Runtime
    }
}

/// Verifies vouchers against trust anchors: the one seam between the agent
/// and libxmlsec1.
pub trait VerifyVouchers: Send {
    /// Every voucher (XML or Base64, as received), in order, against the PEM
    /// trust anchors at `at` (`None`: now); the first refusal ends it.
    fn verify_vouchers(&self, anchors_pem: &[Vec<u8>], vouchers: &[Vec<u8>], at: Option<OffsetDateTime>) -> Result<Vec<VerifiedVoucher>, VerifyError>;
}

/// The `cpekit-xmldsig` helper process.
#[derive(Debug, Clone)]
pub struct Helper {
    path: PathBuf,
    timeout: Duration,
    run_as: Option<(u32, u32)>,
}

impl Helper {
    /// Verifying 32 vouchers takes milliseconds; this bounds a wedged helper.
    pub const TIMEOUT: Duration = Duration::from_secs(30);

    /// The helper at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Helper {
        Helper { path: path.into(), timeout: Self::TIMEOUT, run_as: None }
    }

    /// `configured` if given, else `$CPEKIT_XMLDSIG`, else `cpekit-xmldsig`
    /// in the directory of the running executable (it is installed beside
    /// `cpekit`). Nothing is checked here: a missing helper is an error
    /// when a voucher arrives, not before.
    pub fn locate(configured: Option<&Path>) -> Helper {
        if let Some(p) = configured {
            return Helper::at(p);
        }
        if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
            return Helper::at(p);
        }
        let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join(HELPER_NAME)));
        Helper::at(beside.unwrap_or_else(|| PathBuf::from(HELPER_NAME)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Helper {
        self.timeout = timeout;
        self
    }

    /// Run the helper as this user and group (an agent running as root:
    /// e.g. nobody's 65534). The helper needs to read nothing but its own
    /// binary and libraries.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Helper {
        self.run_as = Some((uid, gid));
        self
    }

    fn error(&self, message: impl Into<String>) -> HelperError {
        HelperError { path: self.path.clone(), message: message.into() }
    }

    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.path);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        // SAFETY: only async-signal-safe calls (prctl, setrlimit) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                confine();
                Ok(())
            });
        }
        cmd
    }

    /// Send one request, read one response (no interaction).
    pub fn call(&self, request: &Request) -> Result<Response, HelperError> {
        let input = serde_json::to_vec(request).map_err(|e| self.error(format!("encoding the request: {e}")))?;
        let opts = foundation::subprocess::Options {
            stdin: Some(input),
            stdout_limit: Some(MAX_RESPONSE_BYTES),
            stderr_limit: Some(4096),
            ..foundation::subprocess::Options::new(self.timeout)
        };
        let out = foundation::subprocess::run(&mut self.command(), &opts).map_err(|e| self.error(e.to_string()))?;
        if out.stdout_truncated {
            return Err(self.error(format!("answered more than {MAX_RESPONSE_BYTES} bytes")));
        }
        self.response(&out.stdout, out.status, &out.stderr)
    }

    fn response(&self, stdout: &[u8], status: std::process::ExitStatus, stderr: &[u8]) -> Result<Response, HelperError> {
        if !status.success() {
            let why = String::from_utf8_lossy(stderr);
            return Err(self.error(format!("{status}: {}", why.trim())));
        }
        serde_json::from_slice(stdout).map_err(|e| self.error(format!("not a response: {e}")))
    }

    /// Sign `options` with `key_pem` (or, without one, with `external`
    /// signing the canonical SignedInfo), as `cpekit-xmldsig` does it.
    pub fn sign(
        &self,
        options: &[VoucherOption],
        key_pem: Option<&[u8]>,
        cert_pem: &[u8],
        chain_pem: &[&[u8]],
        algorithm: SignAlgorithm,
        external: Option<&mut ExternalSigner<'_>>,
    ) -> Result<String, SignError> {
        let request = Request::Sign {
            options: options.to_vec(),
            key_pem: key_pem.map(|k| Bytes(k.to_vec())),
            cert_pem: Bytes(cert_pem.to_vec()),
            chain_pem: chain_pem.iter().map(|c| Bytes(c.to_vec())).collect(),
            algorithm,
        };
        let response = match external {
            None => self.call(&request)?,
            Some(f) => self.interact(&request, f)?,
        };
        match response {
            Response::Signed { xml } => Ok(xml),
            Response::Refused { error, .. } => Err(SignError::Voucher(error)),
            r => Err(self.error(format!("unexpected answer to sign: {r:?}")).into()),
        }
    }

    /// A sign request whose key the caller holds: request, SignRequest,
    /// SignatureReply, Signed. Interactive `cpekit voucher sign` only: no
    /// deadline (a token may take its time); the answers are bounded and the
    /// helper ends when its standard input closes.
    fn interact(&self, request: &Request, sign: &mut ExternalSigner<'_>) -> Result<Response, HelperError> {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::process::Stdio;
        let mut child =
            self.command().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| self.error(format!("cannot start: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped").take(MAX_RESPONSE_BYTES as u64));
        let mut line = serde_json::to_vec(request).map_err(|e| self.error(format!("encoding the request: {e}")))?;
        line.push(b'\n');
        let result = (|| {
            stdin.write_all(&line).map_err(|e| self.error(format!("writing the request: {e}")))?;
            let mut answer = String::new();
            stdout.read_line(&mut answer).map_err(|e| self.error(format!("reading: {e}")))?;
            let Ok(Response::SignRequest { signed_info }) = serde_json::from_str::<Response>(&answer) else {
                return Ok(answer);
            };
            let reply = match sign(&signed_info.0) {
                Ok(sig) => SignatureReply::Signature(Bytes(sig)),
                Err(e) => SignatureReply::Error(e),
            };
            let mut line = serde_json::to_vec(&reply).map_err(|e| self.error(format!("encoding: {e}")))?;
            line.push(b'\n');
            stdin.write_all(&line).map_err(|e| self.error(format!("writing the signature: {e}")))?;
            let mut answer = String::new();
            stdout.read_line(&mut answer).map_err(|e| self.error(format!("reading: {e}")))?;
            Ok(answer)
        })();
        drop(stdin);
        let mut stderr = Vec::new();
        if let Some(e) = child.stderr.take() {
            let _ = e.take(4096).read_to_end(&mut stderr);
        }
        let status = child.wait().map_err(|e| self.error(format!("waiting: {e}")))?;
        let answer = result?;
        self.response(answer.as_bytes(), status, &stderr)
    }
}

/// Why `cpekit voucher sign` through the helper failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Voucher(VoucherError),
    #[error(transparent)]
    Helper(#[from] HelperError),
}

/// In the helper's child, before exec: no gaining privileges through exec
/// (set-user-ID binaries, file capabilities), no core dump of key material,
/// and at most 1 GiB of address space.
fn confine() {
    // SAFETY: plain system calls on constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        let gib = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
        libc::setrlimit(libc::RLIMIT_AS, &gib);
    }
}

impl VerifyVouchers for Helper {
    fn verify_vouchers(&self, anchors_pem: &[Vec<u8>], vouchers: &[Vec<u8>], at: Option<OffsetDateTime>) -> Result<Vec<VerifiedVoucher>, VerifyError> {
        let request =
            Request::Verify { anchors_pem: anchors_pem.iter().cloned().map(Bytes).collect(), vouchers: vouchers.iter().cloned().map(Bytes).collect(), at };
        match self.call(&request)? {
            Response::Verified { vouchers: v } if v.len() == vouchers.len() => Ok(v),
            Response::Refused { index: None, error } => Err(VerifyError::Anchors(error)),
            Response::Refused { index: Some(index), error } if index < vouchers.len() => Err(VerifyError::Voucher { index, error }),
            r => Err(self.error(format!("unexpected answer to verify: {r:?}")).into()),
        }
    }
}

/// The helper's side of [`Request::Verify`], given a verifier of one
/// voucher built from the anchors (the `cpekit-xmldsig` library's).
pub fn verify_each<V>(
    anchors_pem: &[Vec<u8>],
    vouchers: &[Vec<u8>],
    new: impl FnOnce(&[Vec<u8>]) -> Result<V, VoucherError>,
    verify: impl Fn(&V, &[u8]) -> Result<VerifiedVoucher, VoucherError>,
) -> Result<Vec<VerifiedVoucher>, VerifyError> {
    let verifier = new(anchors_pem).map_err(VerifyError::Anchors)?;
    vouchers.iter().enumerate().map(|(index, v)| verify(&verifier, v).map_err(|error| VerifyError::Voucher { index, error })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_the_protocol() {
        let errors = [
            VoucherError::Doctype,
            VoucherError::BadSignature("x".into()),
            VoucherError::Field { field: "Mode".into(), problem: "bad".into() },
            VoucherError::Limit(foundation::XmlLimitError::TooDeep { limit: 3, line: 7 }),
            VoucherError::TooManyReferences { count: 40, limit: 32 },
        ];
        for e in errors {
            let r = Response::Refused { index: Some(2), error: e };
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), r, "{json}");
        }
        let req = Request::Verify { anchors_pem: vec![Bytes(b"\xff-".to_vec())], vouchers: vec![], at: Some(OffsetDateTime::UNIX_EPOCH) };
        assert_eq!(serde_json::from_str::<Request>(&serde_json::to_string(&req).unwrap()).unwrap(), req);
    }

    /// `run_as` is the helper's identity: a stand-in helper records its uid
    /// and answers an empty verification. As root it runs as the user given
    /// (nobody); without the privilege to change user (anyone else asking
    /// for root), the helper does not run at all, never as the caller instead.
    #[test]
    fn run_as_runs_the_helper_as_that_user() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let script = d.path().join("helper");
        let uid_file = d.path().join("uid");
        std::fs::write(&script, format!("#!/bin/sh\nid -u > '{}'\ncat >/dev/null\necho '{{\"result\":\"verified\",\"vouchers\":[]}}'\n", uid_file.display()))
            .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // As the caller: it runs, as the caller.
        let me = unsafe { libc::geteuid() };
        assert_eq!(Helper::at(&script).verify_vouchers(&[], &[], None).unwrap(), vec![]);
        assert_eq!(std::fs::read_to_string(&uid_file).unwrap().trim(), me.to_string());
        std::fs::remove_file(&uid_file).unwrap();
        // Root drops to nobody; anyone else cannot become root.
        let other = if me == 0 { 65534 } else { 0 };
        let r = Helper::at(&script).run_as(other, other).verify_vouchers(&[], &[], None);
        if me == 0 {
            assert_eq!(r.unwrap(), vec![]);
            assert_eq!(std::fs::read_to_string(&uid_file).unwrap().trim(), other.to_string());
        } else {
            assert!(matches!(&r, Err(VerifyError::Helper(e)) if e.message.contains("cannot start")), "{r:?}");
            assert!(!uid_file.exists(), "the helper ran although it could not change user");
        }
    }

    #[test]
    fn a_missing_helper_is_a_helper_error() {
        let h = Helper::at("/nonexistent/cpekit-xmldsig");
        match h.verify_vouchers(&[], &[b"<x/>".to_vec()], None) {
            Err(VerifyError::Helper(e)) => assert!(e.message.contains("cannot start"), "{e}"),
            r => panic!("{r:?}"),
        }
    }
}
