//! DNSSEC signature verification with ring: a DNSKEY's public key is
//! parsed once into a [`PublicKey`], which then checks any number of
//! signatures from any thread.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};

/// Why a key or a signature could not be used or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An algorithm this verifier does not implement (Ed448, unknown
    /// numbers): never treated as valid, never as bogus.
    #[error("algorithm {0} is not supported")]
    UnsupportedAlgorithm(u8),
    /// An RSA key outside the 1024..=8192-bit range ring verifies.
    #[error("RSA key of {0} bits is outside the supported 1024-8192")]
    UnsupportedKeySize(usize),
    /// The DNSKEY's public-key field is not a key of its algorithm.
    #[error("malformed public key")]
    MalformedKey,
    /// The signature has the wrong length or form for its algorithm.
    #[error("malformed signature")]
    MalformedSignature,
    /// The signature is well formed but does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

impl CryptoError {
    /// An algorithm or key size we cannot check: "unsupported", not "bogus".
    pub fn is_unsupported(&self) -> bool {
        matches!(self, CryptoError::UnsupportedAlgorithm(_) | CryptoError::UnsupportedKeySize(_))
    }

    /// The signature is malformed (as opposed to well formed but wrong).
    pub fn is_malformed_signature(&self) -> bool {
        matches!(self, CryptoError::MalformedSignature)
    }
}

/// A DNSKEY's public key, ready to verify.
#[derive(Debug)]
pub enum PublicKey {
    /// RSA (algorithms 5, 7, 8, 10).
    Rsa {
        /// Modulus and exponent.
        components: RsaPublicKeyComponents<Vec<u8>>,
        /// The ring algorithm for the DNSSEC algorithm number.
        params: &'static signature::RsaParameters,
    },
    /// ECDSA P-256/P-384 (13, 14) and Ed25519 (15).
    Raw {
        /// The key in ring's form (uncompressed point for ECDSA).
        key: UnparsedPublicKey<Vec<u8>>,
        /// Exact signature length the algorithm produces.
        signature_len: usize,
    },
}

impl PublicKey {
    /// Parses the public-key field of a DNSKEY of `algorithm`.
    pub fn from_dnskey(algorithm: u8, public_key: &[u8]) -> Result<PublicKey, CryptoError> {
        match algorithm {
            5 | 7 => rsa(public_key, &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
            8 => rsa(public_key, &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
            10 => rsa(public_key, &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
            13 => ecdsa(public_key, 32, &signature::ECDSA_P256_SHA256_FIXED),
            14 => ecdsa(public_key, 48, &signature::ECDSA_P384_SHA384_FIXED),
            15 if public_key.len() == 32 => Ok(PublicKey::Raw {
                key: UnparsedPublicKey::new(&signature::ED25519, public_key.to_vec()),
                signature_len: 64,
            }),
            15 => Err(CryptoError::MalformedKey),
            other => Err(CryptoError::UnsupportedAlgorithm(other)),
        }
    }

    /// Checks `signature` over `signed_data`.
    pub fn verify(&self, signed_data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        match self {
            PublicKey::Rsa { components, params } => {
                if signature.len() != components.n.len() {
                    return Err(CryptoError::MalformedSignature);
                }
                components.verify(params, signed_data, signature).map_err(|_| CryptoError::BadSignature)
            }
            PublicKey::Raw { key, signature_len } => {
                if signature.len() != *signature_len {
                    return Err(CryptoError::MalformedSignature);
                }
                key.verify(signed_data, signature).map_err(|_| CryptoError::BadSignature)
            }
        }
    }
}

/// RFC 3110 §2: exponent length (one octet, or zero then two octets),
/// exponent, modulus.
fn rsa(key: &[u8], params: &'static signature::RsaParameters) -> Result<PublicKey, CryptoError> {
    let (exp_len, rest) = match key.split_first() {
        Some((0, rest)) if rest.len() >= 2 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
        Some((&len, rest)) => (usize::from(len), rest),
        None => return Err(CryptoError::MalformedKey),
    };
    if exp_len == 0 || rest.len() <= exp_len {
        return Err(CryptoError::MalformedKey);
    }
    let (e, n) = rest.split_at(exp_len);
    let n = strip_leading_zeros(n);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(1024..=8192).contains(&bits) {
        return Err(CryptoError::UnsupportedKeySize(bits));
    }
    Ok(PublicKey::Rsa {
        components: RsaPublicKeyComponents { n: n.to_vec(), e: strip_leading_zeros(e).to_vec() },
        params,
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// RFC 6605 §4: the key is X | Y; ring wants the uncompressed point.
fn ecdsa(
    key: &[u8],
    coordinate_len: usize,
    algorithm: &'static dyn VerificationAlgorithm,
) -> Result<PublicKey, CryptoError> {
    if key.len() != 2 * coordinate_len {
        return Err(CryptoError::MalformedKey);
    }
    let mut point = Vec::with_capacity(1 + key.len());
    point.push(0x04);
    point.extend_from_slice(key);
    Ok(PublicKey::Raw { key: UnparsedPublicKey::new(algorithm, point), signature_len: 2 * coordinate_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    #[test]
    fn ecdsa_and_ed25519_verify_and_fail_as_they_should() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key");
        let sig = pair.sign(&rng, b"data").expect("sign");
        let key = PublicKey::from_dnskey(13, &pair.public_key().as_ref()[1..]).expect("P-256 key");
        assert_eq!(key.verify(b"data", sig.as_ref()), Ok(()));
        assert_eq!(key.verify(b"datA", sig.as_ref()), Err(CryptoError::BadSignature));
        assert_eq!(key.verify(b"data", &sig.as_ref()[1..]), Err(CryptoError::MalformedSignature));

        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let key = PublicKey::from_dnskey(15, pair.public_key().as_ref()).expect("Ed25519 key");
        assert_eq!(key.verify(b"data", pair.sign(b"data").as_ref()), Ok(()));
        assert_eq!(key.verify(b"other", pair.sign(b"data").as_ref()), Err(CryptoError::BadSignature));
    }

    #[test]
    fn unsupported_is_not_bogus() {
        assert_eq!(PublicKey::from_dnskey(16, &[0; 57]).err(), Some(CryptoError::UnsupportedAlgorithm(16)));
        assert!(PublicKey::from_dnskey(16, &[0; 57]).err().is_some_and(|e| e.is_unsupported()));
        // A 512-bit RSA key: e = 65537, n = 64 octets.
        let mut key = vec![3, 1, 0, 1, 0xc0];
        key.extend_from_slice(&[0x11; 63]);
        assert_eq!(PublicKey::from_dnskey(8, &key).err(), Some(CryptoError::UnsupportedKeySize(512)));
        assert_eq!(PublicKey::from_dnskey(13, &[0; 63]).err(), Some(CryptoError::MalformedKey));
    }

    /// RFC 8080 §6.1: example.com. MX signed with Ed25519.
    #[test]
    fn rfc8080_ed25519_vector() {
        let key = data_encoding::BASE64.decode(b"l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=").expect("base64");
        let sig = data_encoding::BASE64
            .decode(b"oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==")
            .expect("base64");
        let mut data = Vec::new();
        // RRSIG RDATA: MX 15 2 3600 1440021600 1438207200 3613 example.com.
        data.extend_from_slice(&[0, 15, 15, 2]);
        data.extend_from_slice(&3600u32.to_be_bytes());
        data.extend_from_slice(&1_440_021_600u32.to_be_bytes());
        data.extend_from_slice(&1_438_207_200u32.to_be_bytes());
        data.extend_from_slice(&3613u16.to_be_bytes());
        data.extend_from_slice(b"\x07example\x03com\x00");
        // example.com. 3600 IN MX 10 mail.example.com.
        data.extend_from_slice(b"\x07example\x03com\x00\x00\x0f\x00\x01");
        data.extend_from_slice(&3600u32.to_be_bytes());
        let rdata = b"\x00\x0a\x04mail\x07example\x03com\x00";
        data.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        data.extend_from_slice(rdata);
        let public = PublicKey::from_dnskey(15, &key).expect("key");
        assert_eq!(public.verify(&data, &sig), Ok(()));
    }
}
