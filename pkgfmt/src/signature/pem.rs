//! Loading keys and certificates from PEM files.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use x509_cert::Certificate;

use super::error::SignatureError;

/// Every `CERTIFICATE` in a PEM file, in order.
pub fn load_certs_pem(pem: &[u8]) -> Result<Vec<Certificate>, SignatureError> {
    Certificate::load_pem_chain(pem).map_err(|e| SignatureError::Pem(e.to_string()))
}

/// An RSA private key in PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM.
pub fn load_private_key_pem(pem: &[u8]) -> Result<rsa::RsaPrivateKey, SignatureError> {
    let text = std::str::from_utf8(pem).map_err(|_| SignatureError::Pem("key file is not text".into()))?;
    if text.contains("BEGIN RSA PRIVATE KEY") {
        rsa::RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| SignatureError::Pem(format!("PKCS#1 key: {e}")))
    } else if text.contains("BEGIN PRIVATE KEY") {
        rsa::RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| SignatureError::Pem(format!("PKCS#8 key: {e} (RSA keys only)")))
    } else if text.contains("ENCRYPTED PRIVATE KEY") {
        Err(SignatureError::Pem("encrypted private keys are not supported; decrypt with `openssl pkey`".into()))
    } else {
        Err(SignatureError::Pem("no PRIVATE KEY or RSA PRIVATE KEY block found".into()))
    }
}
