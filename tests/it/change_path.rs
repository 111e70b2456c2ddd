//! The change path (`sign::sign_changes`) against the full signer: a
//! zone of delegations (secure and not, with glue), deep names with
//! empty non-terminals, a wildcard and apex data is changed at random,
//! round after round, and each change is signed both ways. The two
//! versions must hold the same records and signatures by the same keys
//! over the same RRsets (the signature bytes differ: P-256 signatures are
//! randomised), and the edited one must pass the verifier. Under NSEC,
//! NSEC3 and NSEC3 opt-out; and with ZONEMD, whose digest the change
//! path makes again over each edited version (the digests of the two
//! versions differ with their signatures' bytes: each must match its own
//! zone, which the verifier checks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::soft_keys::SoftKeys;
use signet::policy::Policy;
use signet::sign::{Basis, SignSettings, sign_changes, sign_zone_in_memory};
use signet::verify::{NoProgress, VerifyOptions, verify_version};
use signet::zone::dnssec::Rrsig;
use signet::zone::{Name, Rtype, Zone, read_zone_str};

const NOW: i64 = 1_795_000_000;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The unsigned zone as owner → records (type and RDATA text).
#[derive(Clone)]
struct Model {
    serial: u32,
    /// The SOA MINIMUM (the NSEC and NSEC3 TTL, RFC 9077).
    minimum: u32,
    names: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl Model {
    fn new() -> Model {
        let mut model = Model { serial: 1, minimum: 300, names: BTreeMap::new() };
        model.add("@", "NS", "ns1.example.");
        model.add("@", "NS", "ns2.example.");
        model.add("@", "MX", "10 mail.example.");
        model.add("ns1", "A", "192.0.2.1");
        model.add("ns2", "AAAA", "2001:db8::2");
        model.add("mail", "A", "192.0.2.25");
        model.add("*.wild", "TXT", "\"wildcard\"");
        model.add("a.b.deep", "TXT", "\"deep\"");
        for i in 0..120 {
            model.delegation(i, i % 3 == 0, i % 4 == 0);
        }
        model
    }

    fn add(&mut self, owner: &str, rtype: &str, rdata: &str) {
        self.names.entry(owner.to_owned()).or_default().insert((rtype.to_owned(), rdata.to_owned()));
    }

    fn delegation(&mut self, i: u64, secure: bool, glue: bool) {
        let owner = format!("d{i}");
        if glue {
            self.add(&owner, "NS", &format!("ns.d{i}.example."));
            self.add(&format!("ns.d{i}"), "A", &format!("198.51.100.{}", i % 250 + 1));
        } else {
            self.add(&owner, "NS", "ns.provider.test.");
        }
        if secure {
            self.add(&owner, "DS", &format!("{} 13 2 {:064X}", 1000 + i, i + 1));
        }
    }

    fn text(&self) -> String {
        let mut text = format!(
            "$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1.example. hostmaster.example. {} 7200 3600 1209600 {}\n",
            self.serial, self.minimum
        );
        for (owner, records) in &self.names {
            for (rtype, rdata) in records {
                text.push_str(&format!("{owner} IN {rtype} {rdata}\n"));
            }
        }
        text
    }

    fn zone(&self) -> Zone {
        let origin = Name::from_text("example.", None).expect("origin");
        read_zone_str(&self.text(), &origin, Path::new("model.zone")).expect("the model reads")
    }

    fn pick(&self, rng: &mut Rng, prefix: &str) -> Option<String> {
        let names: Vec<&String> = self.names.keys().filter(|n| n.starts_with(prefix)).collect();
        (!names.is_empty()).then(|| names[rng.below(names.len() as u64) as usize].clone())
    }

    /// One random change of a few records.
    fn change(&mut self, rng: &mut Rng, round: u64) {
        self.serial += 1;
        if round == 17 {
            self.minimum = 600;
            return;
        }
        match rng.below(9) {
            0 => self.delegation(1000 + round, rng.below(2) == 0, rng.below(2) == 0),
            1 => {
                if let Some(owner) = self.pick(rng, "d") {
                    self.names.retain(|name, _| name != &owner && !name.ends_with(&format!(".{owner}")));
                }
            }
            2 => {
                if let Some(owner) = self.pick(rng, "d") {
                    let records = self.names.entry(owner.clone()).or_default();
                    if !records.iter().any(|(t, _)| t == "DS") {
                        records.insert(("DS".into(), format!("4242 13 2 {:064X}", round + 7)));
                    } else {
                        records.retain(|(t, _)| t != "DS");
                    }
                }
            }
            3 => self.add("www", "A", &format!("192.0.2.{}", round % 250 + 1)),
            4 => self.add(&format!("x{round}.y.deep"), "TXT", "\"new deep\""),
            5 => {
                let deep: Vec<String> = self.names.keys().filter(|n| n.ends_with(".deep")).cloned().collect();
                if let Some(owner) = deep.get(rng.below(deep.len().max(1) as u64) as usize) {
                    self.names.remove(owner);
                }
            }
            6 => self.add("@", "TXT", &format!("\"round {round}\"")),
            7 => {
                // A name turns into a delegation (what was below becomes glue).
                self.add(&format!("z{round}.deep"), "A", "192.0.2.99");
                self.add("deep", "NS", "ns.provider.test.");
            }
            _ => {
                self.names.remove("deep");
                self.add(&format!("ns.d{round}"), "A", "203.0.113.5");
            }
        }
    }
}

/// The records apart from signatures, and the signatures as (owner,
/// covered type, key tag, labels, original TTL).
type Contents = (BTreeSet<(String, u16, u32, Vec<u8>)>, BTreeSet<(String, u16, u16, u8, u32)>);

fn contents(zone: &Zone) -> Contents {
    let (mut records, mut rrsigs) = (BTreeSet::new(), BTreeSet::new());
    for r in zone.records() {
        let owner = r.owner.to_string().to_ascii_lowercase();
        if r.rtype == Rtype::RRSIG {
            let sig = Rrsig::parse(r.rdata).expect("an RRSIG parses");
            rrsigs.insert((owner, sig.type_covered.0, sig.key_tag, sig.labels, sig.original_ttl));
        } else if r.rtype == Rtype::ZONEMD {
            // Serial, scheme and hash: the digest is of each version's own bytes.
            records.insert((owner, r.rtype.0, r.ttl, r.rdata[..6].to_vec()));
        } else {
            records.insert((owner, r.rtype.0, r.ttl, r.rdata.to_vec()));
        }
    }
    (records, rrsigs)
}

fn rounds(denial: &str) {
    rounds_with(denial, "");
}

/// [`rounds`] with `zone` as the policy's `[zone]` section.
fn rounds_with(denial: &str, zone: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let soft_keys = SoftKeys::new(dir.path());
    let keys = soft_keys.signing_keys();
    let (policy, _) =
        Policy::from_text(&format!("[zone]\n{zone}\n[denial]\n{denial}\n"), Path::new("test.toml")).expect("policy");
    let mut settings = SignSettings::from_policy(&policy, NOW, vec![0xab, 0xcd]);
    let mut model = Model::new();
    let mut unsigned = model.zone();
    let (first, _) = sign_zone_in_memory(&unsigned, &keys, &settings, None, None).expect("signed");
    let mut signed = std::sync::Arc::new(first);
    let mut rng = Rng(0x5eed_0000 + denial.len() as u64);
    let mut previous_minimum = model.minimum;
    for round in 0..40 {
        model.change(&mut rng, round);
        let next = model.zone();
        settings.now += 60;
        settings.last_serial = Some(model.serial);
        let basis = Basis { signed: &signed, unsigned: &unsigned };
        let changed = sign_changes(basis, &next, &keys, &settings, None).expect("signed");
        if model.minimum != previous_minimum {
            // Every NSEC or NSEC3 TTL moves: not a change for this path.
            assert!(changed.is_none(), "{denial}, round {round}: a new SOA MINIMUM is signed in full");
            previous_minimum = model.minimum;
            let (full, _) = sign_zone_in_memory(&next, &keys, &settings, Some(&signed), None).expect("signed in full");
            (signed, unsigned) = (std::sync::Arc::new(full), next);
            continue;
        }
        let (edited, stats) =
            changed.unwrap_or_else(|| panic!("{denial}, round {round}: the change path was not taken"));
        let (full, _) = sign_zone_in_memory(&next, &keys, &settings, Some(&signed), None).expect("signed in full");
        let (edited_contents, full_contents) = (contents(&edited), contents(&full));
        if edited_contents != full_contents {
            let only = |a: &Contents, b: &Contents| -> Vec<String> {
                let records = a.0.difference(&b.0).map(|r| format!("{} {} {}", r.0, Rtype(r.1), r.2));
                let rrsigs = a.1.difference(&b.1).map(|r| format!("{} RRSIG {} tag {}", r.0, Rtype(r.1), r.2));
                records.chain(rrsigs).collect()
            };
            panic!(
                "{denial}, round {round}: the edited version differs from the full one\nonly edited: {:#?}\nonly full: {:#?}",
                only(&edited_contents, &full_contents),
                only(&full_contents, &edited_contents)
            );
        }
        assert!(
            stats.rrsigs < 40,
            "{denial}, round {round}: only the changes are signed ({} signatures)",
            stats.rrsigs
        );
        let options = VerifyOptions { now: settings.now, min_validity: 0, ..VerifyOptions::default() };
        let version = verify_version(edited, &options, &NoProgress)
            .unwrap_or_else(|e| panic!("{denial}, round {round}: the edited version is refused: {e:?}"));
        if !zone.is_empty() {
            let apex = version.zone().node(version.zone().origin()).expect("apex");
            assert!(apex.has(Rtype::ZONEMD), "{denial}, round {round}: the edited version has its ZONEMD");
        }
        signed = std::sync::Arc::clone(version.zone());
        unsigned = next;
    }
}

#[test]
fn nsec_changes_sign_as_the_full_signer_does() {
    rounds("type = \"nsec\"");
}

#[test]
fn nsec3_changes_sign_as_the_full_signer_does() {
    rounds("type = \"nsec3\"");
}

#[test]
fn nsec3_opt_out_changes_sign_as_the_full_signer_does() {
    rounds("type = \"nsec3\"\nopt-out = true");
}

#[test]
fn nsec_changes_with_zonemd_keep_the_digest_right() {
    rounds_with("type = \"nsec\"", "zonemd = [\"sha384\"]");
}

#[test]
fn nsec3_opt_out_changes_with_zonemd_keep_the_digest_right() {
    rounds_with("type = \"nsec3\"\nopt-out = true", "zonemd = [\"sha384\", \"sha512\"]");
}
