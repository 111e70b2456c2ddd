//! Record types: numbers, mnemonics, and the RFC 3597 `TYPEnnn` form.

use std::fmt;

/// A resource record type code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rtype(pub u16);

macro_rules! rtypes {
    ($($name:ident = $code:expr,)*) => {
        impl Rtype {
            $(
                #[doc = concat!("The ", stringify!($name), " type.")]
                pub const $name: Rtype = Rtype($code);
            )*
        }
        /// Every type that has a mnemonic, with its text.
        const MNEMONICS: &[(Rtype, &str)] = &[$((Rtype::$name, stringify!($name)),)*];
    };
}

rtypes! {
    A = 1, NS = 2, MD = 3, MF = 4, CNAME = 5, SOA = 6, MB = 7, MG = 8, MR = 9,
    NULL = 10, WKS = 11, PTR = 12, HINFO = 13, MINFO = 14, MX = 15, TXT = 16,
    RP = 17, AFSDB = 18, X25 = 19, ISDN = 20, RT = 21, NSAP = 22, SIG = 24,
    KEY = 25, PX = 26, GPOS = 27, AAAA = 28, LOC = 29, NXT = 30, SRV = 33,
    NAPTR = 35, KX = 36, CERT = 37, A6 = 38, DNAME = 39, OPT = 41, APL = 42,
    DS = 43, SSHFP = 44, IPSECKEY = 45, RRSIG = 46, NSEC = 47, DNSKEY = 48,
    DHCID = 49, NSEC3 = 50, NSEC3PARAM = 51, TLSA = 52, SMIMEA = 53, HIP = 55,
    CDS = 59, CDNSKEY = 60, OPENPGPKEY = 61, CSYNC = 62, ZONEMD = 63,
    SVCB = 64, HTTPS = 65, SPF = 99, NID = 104, L32 = 105, L64 = 106, LP = 107,
    EUI48 = 108, EUI64 = 109, TKEY = 249, TSIG = 250, IXFR = 251, AXFR = 252,
    ANY = 255, URI = 256, CAA = 257, DLV = 32769,
}

impl Rtype {
    /// Reads a mnemonic (case-insensitive) or `TYPEnnn`.
    pub fn from_text(text: &str) -> Option<Rtype> {
        // The bulk of a large zone, checked before the full table.
        const COMMON: [(Rtype, &str); 7] = [
            (Rtype::NS, "NS"),
            (Rtype::A, "A"),
            (Rtype::AAAA, "AAAA"),
            (Rtype::DS, "DS"),
            (Rtype::RRSIG, "RRSIG"),
            (Rtype::NSEC, "NSEC"),
            (Rtype::NSEC3, "NSEC3"),
        ];
        if let Some(&(rtype, _)) = COMMON.iter().find(|(_, name)| name.eq_ignore_ascii_case(text)) {
            return Some(rtype);
        }
        if let Some(&(rtype, _)) = MNEMONICS.iter().find(|(_, name)| name.eq_ignore_ascii_case(text)) {
            return Some(rtype);
        }
        let digits = text.get(..4).filter(|p| p.eq_ignore_ascii_case("TYPE")).map(|_| &text[4..])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Rtype)
    }

    /// The mnemonic, if the type has one.
    pub fn mnemonic(self) -> Option<&'static str> {
        MNEMONICS.iter().find(|(rtype, _)| *rtype == self).map(|(_, name)| *name)
    }

    /// Types that exist only in messages, never in a zone (RFC 6895 §3.1).
    pub fn is_meta(self) -> bool {
        matches!(self.0, 41 | 128..=255)
    }

    /// Types that may hold DNSSEC data and so are never part of the
    /// records the signer makes up itself.
    pub fn is_dnssec_generated(self) -> bool {
        matches!(self, Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3)
    }
}

impl fmt::Display for Rtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mnemonic() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

impl fmt::Debug for Rtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        assert_eq!(Rtype::from_text("nsec3param"), Some(Rtype::NSEC3PARAM));
        assert_eq!(Rtype::from_text("TYPE65534"), Some(Rtype(65534)));
        assert_eq!(Rtype::from_text("type1"), Some(Rtype::A));
        assert_eq!(Rtype::from_text("TYPE"), None);
        assert_eq!(Rtype::from_text("TYPE70000"), None);
        assert_eq!(Rtype::from_text("BOGUS"), None);
        assert_eq!(Rtype(65534).to_string(), "TYPE65534");
        assert_eq!(Rtype::ZONEMD.to_string(), "ZONEMD");
    }
}
