//! A KSK and a ZSK (ECDSA P-256) in a soft key store, for tests that
//! call the signer as a library.

use std::path::Path;

use signet::keys::soft::SoftStore;
use signet::keys::{Algorithm, KeyStore as _, PublishedKey, Role, SigningKey};
use signet::sign::{Signer, SigningKeys};

/// The two keys, made in `dir`.
pub struct SoftKeys {
    ksk: Box<dyn SigningKey>,
    zsk: Box<dyn SigningKey>,
}

impl SoftKeys {
    pub fn new(dir: &Path) -> SoftKeys {
        let store = SoftStore::new(dir);
        let ksk = store.generate(Algorithm::EcdsaP256Sha256, 256, "ksk").expect("ksk");
        let zsk = store.generate(Algorithm::EcdsaP256Sha256, 256, "zsk").expect("zsk");
        SoftKeys { ksk, zsk }
    }

    /// Both published, the KSK signing the DNSKEY RRset and named by the
    /// CDS, the ZSK signing the zone.
    pub fn signing_keys(&self) -> SigningKeys<'_> {
        let (ksk, zsk) =
            (PublishedKey::new(self.ksk.as_ref(), Role::Ksk), PublishedKey::new(self.zsk.as_ref(), Role::Zsk));
        SigningKeys {
            published: vec![ksk.clone(), zsk.clone()],
            key_signers: vec![Signer { key: self.ksk.as_ref(), tag: ksk.tag }],
            zone_signers: vec![Signer { key: self.zsk.as_ref(), tag: zsk.tag }],
            cds: vec![ksk],
            ..SigningKeys::default()
        }
    }
}
