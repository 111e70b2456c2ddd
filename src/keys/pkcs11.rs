//! The PKCS#11 key store (cryptoki). Being written: see the signing issue.

use super::uri::Pkcs11Uri;
use super::{Algorithm, KeyError, KeyStore, KeyUri, SigningKey};

/// A token reached through a PKCS#11 module.
#[derive(Debug)]
pub struct Pkcs11Store {
    uri: Pkcs11Uri,
}

impl Pkcs11Store {
    /// Loads the module, finds the token by label and logs in.
    pub fn open(uri: &Pkcs11Uri) -> Result<Pkcs11Store, KeyError> {
        Err(KeyError::Module { path: uri.module(), reason: "the PKCS#11 store is not built yet".to_owned() })
    }
}

impl KeyStore for Pkcs11Store {
    fn generate(&self, _algorithm: Algorithm, _bits: u32, _label: &str) -> Result<Box<dyn SigningKey>, KeyError> {
        Err(KeyError::Module { path: self.uri.module(), reason: "not built yet".to_owned() })
    }

    fn open(&self, _uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError> {
        Err(KeyError::Module { path: self.uri.module(), reason: "not built yet".to_owned() })
    }
}
