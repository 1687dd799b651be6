//! Display names of the object identifiers a signature block carries.

use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;

/// Display name of an OID we know, else its dotted form.
pub(crate) fn oid_name(oid: &ObjectIdentifier) -> String {
    let known = [
        (rfc5912::ID_SHA_1, "SHA-1"),
        (rfc5912::ID_MD_5, "MD5"),
        (rfc5912::MD_5_WITH_RSA_ENCRYPTION, "md5WithRSAEncryption"),
        (rfc5912::ID_SHA_256, "SHA-256"),
        (rfc5912::ID_SHA_384, "SHA-384"),
        (rfc5912::ID_SHA_512, "SHA-512"),
        (rfc5912::RSA_ENCRYPTION, "rsaEncryption"),
        (rfc5912::SHA_1_WITH_RSA_ENCRYPTION, "sha1WithRSAEncryption"),
        (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, "sha256WithRSAEncryption"),
        (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, "sha384WithRSAEncryption"),
        (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, "sha512WithRSAEncryption"),
        (rfc5912::DSA_WITH_SHA_1, "dsaWithSHA1"),
        (rfc5912::ECDSA_WITH_SHA_256, "ecdsaWithSHA256"),
        (rfc5911::ID_DATA, "data"),
        (rfc5911::ID_SIGNED_DATA, "signedData"),
    ];
    known.iter().find(|(o, _)| o == oid).map(|(_, n)| n.to_string()).unwrap_or_else(|| oid.to_string())
}
