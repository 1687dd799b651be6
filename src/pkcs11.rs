//! Signing keys in a PKCS#11 token (an HSM, a smart card, SoftHSM): the key
//! never leaves it; the token makes each RSA PKCS#1 v1.5 SHA-1 signature
//! (`CKM_SHA1_RSA_PKCS`).
//!
//! `--key` takes an RFC 7512 URI: `pkcs11:token=LABEL;object=LABEL` (also
//! `id=%01%02`, `serial=`, `slot-id=`, `type=private`), with query
//! attributes `module-path=/path/to/module.so` (else `--pkcs11-module` or
//! `$CPEKIT_PKCS11_MODULE`), and the user PIN from `pin-value=`,
//! `pin-source=file:PATH` (or a path), or `--pass`. Values are
//! percent-decoded.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::RawAuthPin;
use pkgfmt::signature::{RsaSha1Signer, SignatureError};

use crate::exit::usage;

/// A parsed `pkcs11:` URI (RFC 7512).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub serial: Option<String>,
    pub slot_id: Option<u64>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module_path: Option<PathBuf>,
    pub pin_value: Option<Vec<u8>>,
    pub pin_source: Option<String>,
}

/// Whether a `--key` value names a token key rather than a file.
pub fn is_uri(key: &Path) -> bool {
    key.to_str().is_some_and(|s| s.starts_with("pkcs11:"))
}

fn decode(v: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(v).collect()
}

fn text(v: &str) -> Result<String> {
    String::from_utf8(decode(v)).map_err(|_| usage(format!("pkcs11 URI: {v:?} is not UTF-8 once decoded")))
}

impl Pkcs11Uri {
    /// RFC 7512 section 2.3: `pkcs11:` path attributes separated by `;`,
    /// then `?` and query attributes separated by `&`.
    pub fn parse(uri: &str) -> Result<Pkcs11Uri> {
        let rest = uri.strip_prefix("pkcs11:").ok_or_else(|| usage(format!("{uri:?} is not a pkcs11: URI")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = Pkcs11Uri::default();
        let bad = |a: &str| usage(format!("pkcs11 URI: attribute {a:?} is not name=value"));
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').ok_or_else(|| bad(attr))?;
            match k {
                "token" => u.token = Some(text(v)?),
                "serial" => u.serial = Some(text(v)?),
                "slot-id" => u.slot_id = Some(v.parse().map_err(|_| usage(format!("pkcs11 URI: slot-id {v:?} is not a number")))?),
                "object" => u.object = Some(text(v)?),
                "id" => u.id = Some(decode(v)),
                "type" if v == "private" => {}
                "type" => return Err(usage(format!("pkcs11 URI: type={v}: a signing key is type=private"))),
                // RFC 7512: attributes a consumer does not use are ignored
                // (manufacturer, model, library-*, slot-*).
                _ => {}
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').ok_or_else(|| bad(attr))?;
            match k {
                "module-path" => u.module_path = Some(PathBuf::from(text(v)?)),
                "pin-value" => u.pin_value = Some(decode(v)),
                "pin-source" => u.pin_source = Some(text(v)?),
                _ => {}
            }
        }
        if u.object.is_none() && u.id.is_none() {
            return Err(usage(format!("{uri:?}: name the key with object= or id=")));
        }
        Ok(u)
    }

    /// The user PIN: pin-value, else pin-source (a file: URI or a path;
    /// its first line), else `pass`.
    fn pin(&self, pass: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        if let Some(v) = &self.pin_value {
            return Ok(Some(v.clone()));
        }
        if let Some(src) = &self.pin_source {
            let path = src.strip_prefix("file://").or_else(|| src.strip_prefix("file:")).unwrap_or(src);
            let text = std::fs::read(path).with_context(|| format!("pin-source {src}"))?;
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            return Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()));
        }
        Ok(pass.map(<[u8]>::to_vec))
    }
}

/// An RSA private key in a token, with a logged-in session.
pub struct TokenKey {
    session: Session,
    key: ObjectHandle,
    public: rsa::RsaPublicKey,
    // Keeps the library loaded and initialised while the session lives.
    _context: Pkcs11,
}

impl TokenKey {
    /// An RSASSA-PKCS1-v1_5 signature of `message` with SHA-256 (`CKM_SHA256_RSA_PKCS`), for RSA-SHA256 vouchers.
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        self.session.sign(&Mechanism::Sha256RsaPkcs, self.key, message).map_err(|e| SignatureError::Signing(format!("PKCS#11 token: {e}")))
    }
}

impl RsaSha1Signer for TokenKey {
    fn public_key(&self) -> Result<rsa::RsaPublicKey, SignatureError> {
        Ok(self.public.clone())
    }

    fn sign_sha1(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        self.session.sign(&Mechanism::Sha1RsaPkcs, self.key, message).map_err(|e| SignatureError::Signing(format!("PKCS#11 token: {e}")))
    }
}

/// Open the token key a `pkcs11:` URI names.
pub fn open(uri: &str, module: Option<&Path>, pass: Option<&[u8]>) -> Result<TokenKey> {
    let u = Pkcs11Uri::parse(uri)?;
    let module = u
        .module_path
        .clone()
        .or_else(|| module.map(Path::to_path_buf))
        .or_else(|| std::env::var_os("CPEKIT_PKCS11_MODULE").map(PathBuf::from))
        .ok_or_else(|| usage(format!("{uri}: no PKCS#11 module: give module-path= in the URI or --pkcs11-module")))?;
    let ctx = Pkcs11::new(&module).with_context(|| format!("loading PKCS#11 module {}", module.display()))?;
    ctx.initialize(CInitializeArgs::OsThreads).with_context(|| format!("initialising {}", module.display()))?;
    let mut found = Vec::new();
    for slot in ctx.get_slots_with_token()? {
        let info = ctx.get_token_info(slot)?;
        let ok = u.token.as_deref().is_none_or(|t| info.label().trim_end() == t)
            && u.serial.as_deref().is_none_or(|s| info.serial_number().trim_end() == s)
            && u.slot_id.is_none_or(|id| slot.id() == id);
        if ok {
            found.push(slot);
        }
    }
    let slot = match found.as_slice() {
        [s] => *s,
        [] => return Err(anyhow!("{uri}: no token matches (token=, serial=, slot-id=) in {}", module.display())),
        _ => return Err(usage(format!("{uri}: {} tokens match; add token= or serial=", found.len()))),
    };
    let session = ctx.open_ro_session(slot).context("opening a PKCS#11 session")?;
    if let Some(pin) = u.pin(pass)? {
        session
            .login_with_raw(UserType::User, &RawAuthPin::new(pin))
            .or_else(|e| match e {
                cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _) => Ok(()),
                e => Err(e),
            })
            .context("PKCS#11 login (wrong PIN?)")?;
    }
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(o) = &u.object {
        template.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &u.id {
        template.push(Attribute::Id(id.clone()));
    }
    let keys = session.find_objects(&template).context("searching the token")?;
    let key = match keys.as_slice() {
        [k] => *k,
        [] => return Err(anyhow!("{uri}: no private key matches (object=, id=); is the PIN given?")),
        _ => return Err(usage(format!("{uri}: {} private keys match; add id=", keys.len()))),
    };
    let attrs = session.get_attributes(key, &[AttributeType::KeyType, AttributeType::Modulus, AttributeType::PublicExponent])?;
    let (mut n, mut e, mut kind) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::Modulus(m) => n = Some(m),
            Attribute::PublicExponent(x) => e = Some(x),
            _ => {}
        }
    }
    if let Some(k) = kind.filter(|k| *k != KeyType::RSA) {
        return Err(crate::exit::malformed(format!("{uri}: a {k} key: Annex E signatures are RSA with SHA-1 (E.5)")));
    }
    let (Some(n), Some(e)) = (n, e) else {
        return Err(anyhow!("{uri}: the token does not show the key's modulus and exponent"));
    };
    let public = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e)).map_err(|e| anyhow!("{uri}: {e}"))?;
    Ok(TokenKey { session, key, public, _context: ctx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7512_uris() {
        let u =
            Pkcs11Uri::parse("pkcs11:token=My%20Token;object=signer;id=%01%ff;type=private;manufacturer=x?module-path=/usr/lib/m.so&pin-value=12%334").unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.object.as_deref(), Some("signer"));
        assert_eq!(u.id, Some(vec![1, 0xff]));
        assert_eq!(u.module_path, Some(PathBuf::from("/usr/lib/m.so")));
        assert_eq!(u.pin_value, Some(b"1234".to_vec()));
        assert_eq!(u.pin(None).unwrap(), Some(b"1234".to_vec()));
        let u = Pkcs11Uri::parse("pkcs11:object=k").unwrap();
        assert_eq!(u.pin(Some(b"p")).unwrap(), Some(b"p".to_vec()));
        for bad in ["pkcs11:token=t", "pkcs11:object=k;type=public", "file:x", "pkcs11:object"] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
        assert!(is_uri(Path::new("pkcs11:object=k")));
        assert!(!is_uri(Path::new("./pkcs11.pem")));
    }
}
