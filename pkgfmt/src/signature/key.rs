//! Private keys as users have them: PEM or DER, PKCS#1 (`RSA PRIVATE KEY`)
//! or PKCS#8 (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`:
//! PBES2 with PBKDF2 or scrypt and AES, or PBES1/PBES2 with 3DES) and
//! OpenSSL's legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED` with `DEK-Info:`
//! AES-128/192/256-CBC or DES-EDE3-CBC; key from `EVP_BytesToKey` with MD5,
//! one iteration, the first 8 octets of the IV as salt).
//!
//! E.5 signatures are RSA with SHA-1: an EC, DSA or EdDSA key is refused
//! with its algorithm named.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use const_oid::ObjectIdentifier;
use der::{Decode, Document, Tag, Tagged};
use md5::{Digest, Md5};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;

use super::der_walk::{children, single};
use super::error::SignatureError;
use super::oid::oid_name;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// What a key file is, for the message when it is not an RSA key.
fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "EC (id-ecPublicKey)".into(),
        "1.2.840.10040.4.1" => "DSA (id-dsa)".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS (id-RSASSA-PSS)".into(),
        _ => oid_name(oid),
    }
}

fn not_rsa(what: &str) -> SignatureError {
    SignatureError::Key(format!("{what} key: Annex E signatures are RSA with SHA-1 (E.5); give an RSA key"))
}

fn bad(e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Key(e.to_string())
}

/// A key file's bytes, PEM or DER; `pass` decrypts an encrypted one.
pub fn load_private_key(bytes: &[u8], pass: Option<&[u8]>) -> Result<RsaPrivateKey, SignatureError> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| t.contains("-----BEGIN "));
    match text {
        Some(t) => from_pem(t, pass),
        None => from_der(bytes, pass),
    }
}

fn need_pass(pass: Option<&[u8]>) -> Result<&[u8], SignatureError> {
    pass.ok_or_else(|| SignatureError::Key("the key is encrypted: give its passphrase with --pass".into()))
}

fn from_pem(text: &str, pass: Option<&[u8]>) -> Result<RsaPrivateKey, SignatureError> {
    let begin = text.find("-----BEGIN ").expect("checked by the caller");
    let label = text[begin + 11..].split("-----").next().unwrap_or_default().to_string();
    match label.as_str() {
        "RSA PRIVATE KEY" if text.contains("Proc-Type: 4,ENCRYPTED") => legacy_encrypted(&text[begin..], need_pass(pass)?),
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(&text[begin..]).map_err(|e| bad(format!("PKCS#1 key: {e}"))),
        "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
            let (_, doc) = Document::from_pem(&text[begin..]).map_err(|e| bad(format!("{label}: {e}")))?;
            from_der(doc.as_bytes(), pass)
        }
        "EC PRIVATE KEY" => Err(not_rsa("an EC")),
        "DSA PRIVATE KEY" => Err(not_rsa("a DSA")),
        "OPENSSH PRIVATE KEY" => Err(bad("an OpenSSH key: convert it with `ssh-keygen -p -m PEM` or `openssl pkey`")),
        other => Err(bad(format!("a {other:?} PEM block is not a private key (RSA PRIVATE KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY)"))),
    }
}

fn from_der(der: &[u8], pass: Option<&[u8]>) -> Result<RsaPrivateKey, SignatureError> {
    if let Ok(info) = pkcs8::PrivateKeyInfo::from_der(der) {
        if info.algorithm.oid != RSA_ENCRYPTION {
            return Err(not_rsa(&format!("a PKCS#8 {}", algorithm_name(&info.algorithm.oid))));
        }
        return RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(format!("PKCS#8 key: {e}")));
    }
    if let Ok(enc) = pkcs8::EncryptedPrivateKeyInfo::from_der(der) {
        let plain = enc.decrypt(need_pass(pass)?).map_err(|e| bad(format!("decrypting the PKCS#8 key (wrong passphrase?): {e}")))?;
        return from_der(plain.as_bytes(), None);
    }
    if let Ok(k) = RsaPrivateKey::from_pkcs1_der(der) {
        return Ok(k);
    }
    // The other traditional forms OpenSSL writes: SEC 1 ECPrivateKey is
    // SEQUENCE { INTEGER 1, OCTET STRING, ... }; a DSA key six INTEGERs.
    if let Ok(seq) = single(der) {
        let tags: Vec<Tag> = children(seq.value()).map(|c| c.iter().map(|a| a.tag()).collect()).unwrap_or_default();
        if seq.tag() == Tag::Sequence && tags.get(..2) == Some(&[Tag::Integer, Tag::OctetString]) {
            return Err(not_rsa("an EC (SEC 1)"));
        }
        if seq.tag() == Tag::Sequence && tags.len() == 6 && tags.iter().all(|t| *t == Tag::Integer) {
            return Err(not_rsa("a DSA"));
        }
    }
    Err(bad("not a private key: neither PEM nor DER PKCS#8 or PKCS#1"))
}

/// OpenSSL's `EVP_BytesToKey(cipher, MD5, salt, pass, 1)`: key octets from
/// MD5 chains over pass and salt.
fn bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(pass);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

/// A legacy encrypted PEM: headers, then base64 of the CBC-encrypted PKCS#1 DER.
fn legacy_encrypted(pem: &str, pass: &[u8]) -> Result<RsaPrivateKey, SignatureError> {
    let dek = pem.lines().find_map(|l| l.strip_prefix("DEK-Info:")).ok_or_else(|| bad("encrypted PEM without DEK-Info"))?;
    let (cipher, iv_hex) = dek.trim().split_once(',').ok_or_else(|| bad(format!("DEK-Info {dek:?}")))?;
    let iv = hex::decode(iv_hex.trim()).map_err(|_| bad(format!("DEK-Info IV {iv_hex:?} is not hex")))?;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .filter(|l| !l.contains(':') && !l.trim().is_empty())
        .collect();
    let data = base64ct_decode(&body)?;
    let salt = iv.get(..8).ok_or_else(|| bad("DEK-Info IV is too short"))?;
    let wrong = |_| bad("decrypting the PEM key failed (wrong passphrase?)");
    let plain = match cipher.trim() {
        "AES-128-CBC" | "AES-192-CBC" | "AES-256-CBC" => {
            let klen = match cipher.trim() {
                "AES-128-CBC" => 16,
                "AES-192-CBC" => 24,
                _ => 32,
            };
            let key = bytes_to_key(pass, salt, klen);
            if iv.len() != 16 {
                return Err(bad("an AES IV must be 16 octets"));
            }
            match klen {
                16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(wrong)?,
                24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(wrong)?,
                _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(wrong)?,
            }
        }
        "DES-EDE3-CBC" => {
            let key = bytes_to_key(pass, salt, 24);
            cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(&data).map_err(wrong)?
        }
        other => return Err(bad(format!("legacy PEM cipher {other} is not supported (AES-128/192/256-CBC, DES-EDE3-CBC); convert with `openssl pkey`"))),
    };
    RsaPrivateKey::from_pkcs1_der(&plain).map_err(|_| bad("decrypting the PEM key failed (wrong passphrase?)"))
}

fn base64ct_decode(s: &str) -> Result<Vec<u8>, SignatureError> {
    use base64ct::Encoding;
    base64ct::Base64::decode_vec(s).map_err(|e| bad(format!("PEM body: {e}")))
}
