//! Loading certificates (PEM or DER) and, through `key`, private keys.

use der::Decode;
use x509_cert::Certificate;

use super::error::SignatureError;

/// Every `CERTIFICATE` in a PEM file, in order.
pub fn load_certs_pem(pem: &[u8]) -> Result<Vec<Certificate>, SignatureError> {
    Certificate::load_pem_chain(pem).map_err(|e| SignatureError::Pem(e.to_string()))
}

/// The certificates of a file: every `CERTIFICATE` of a PEM file, or the
/// one certificate of a DER file.
pub fn load_certs(bytes: &[u8]) -> Result<Vec<Certificate>, SignatureError> {
    if bytes.first() == Some(&0x30) {
        return Certificate::from_der(bytes).map(|c| vec![c]).map_err(|e| SignatureError::Pem(format!("DER certificate: {e}")));
    }
    load_certs_pem(bytes)
}

/// An RSA private key in PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`)
/// PEM, or DER; see [`load_private_key`](super::load_private_key) for encrypted keys.
pub fn load_private_key_pem(pem: &[u8]) -> Result<rsa::RsaPrivateKey, SignatureError> {
    super::key::load_private_key(pem, None)
}
