//! Zone content rules: what an authoritative zone may hold, whatever its
//! signatures say. The rules are those BIND's `named-checkzone -k fail -n
//! fail` and Knot's `kzonecheck` enforce (the stricter of the two where
//! they differ), from RFC 1034, 1035, 2181, 4035 and 6672 and the DS
//! format; README.md ("Content rules") has the table.
//!
//! Pure: a zone in, a list of violations out, each naming owner, type and
//! rule. The signer checks its input with it and the verifier every zone,
//! so neither needs the other's code.
//!
//! What the reader already refuses is not checked again: an SOA anywhere
//! but the apex, a second SOA record, a zone without one; the meta types
//! (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY: RFC 6895 §3.1); and
//! RDATA that does not fit the type's description in `rdata.rs` (A 4
//! octets, AAAA 16, every field of the types it describes).
//!
//! One pass over the nodes in canonical order, cut into runs checked on
//! all cores. As in `zone::tree`, everything below a name follows it
//! directly, so the zone cut or DNAME a node is below is the last one
//! seen that is its ancestor; a run starts by looking its first node's
//! up. Nothing is allocated per node or record, only per violation.

use std::fmt;

use rayon::prelude::*;

use super::arena::{Node, NodeRun, Rrset, Zone};
use super::dnssec::Ds;
use super::name::{Name, NameRef};
use super::rtype::Rtype;

/// A content rule, named by a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Other data beside a CNAME; only RRSIG, NSEC and NSEC3 may stand
    /// beside one (RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 4035 §2.5).
    CnameAndOtherData,
    /// More than one CNAME record at a name (RFC 2181 §10.1).
    MultipleCnames,
    /// A CNAME at the apex, which must hold SOA and NS (RFC 1034 §3.6.2).
    CnameAtApex,
    /// More than one DNAME record at a name (RFC 6672 §2.4).
    MultipleDnames,
    /// A name below a DNAME (RFC 6672 §2.4).
    DataBelowDname,
    /// No NS RRset at the apex (RFC 1034 §4.2.1, RFC 1035 §5.2).
    ApexWithoutNs,
    /// A DS RRset at the apex: it belongs in the parent (RFC 4035 §2.4).
    DsAtApex,
    /// A DS RRset at a name that is not a delegation (RFC 4035 §2.4).
    DsWithoutDelegation,
    /// NS or DS below a delegation, occluded by it (RFC 1034 §4.2.1).
    NsOrDsBelowDelegation,
    /// An NS RRset of the apex or a delegation naming a server in the zone
    /// that has no address record (RFC 1034 §4.2.1, RFC 9471).
    MissingGlue,
    /// A DS digest of the wrong length for its digest type (RFC 4034
    /// §5.1.4, RFC 4509 §2.2, RFC 5933 §4, RFC 6605 §4), or empty.
    DsDigestLength,
    /// RDATA of the wrong length for a fixed-size type the reader takes
    /// only in the RFC 3597 form.
    RdataLength,
    /// A type that has no place in a zone: TYPE0, the obsolete MD and MF,
    /// NULL (RFC 1035 §3.3.4, §3.3.5, §3.3.10; RFC 6895 §3.1).
    TypeNotInZone,
    /// NS at a wildcard name (RFC 4592 §4.2).
    WildcardDelegation,
}

/// A rule is written as its stable code (in the verifier's findings).
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 14] = [
        Rule::CnameAndOtherData,
        Rule::MultipleCnames,
        Rule::CnameAtApex,
        Rule::MultipleDnames,
        Rule::DataBelowDname,
        Rule::ApexWithoutNs,
        Rule::DsAtApex,
        Rule::DsWithoutDelegation,
        Rule::NsOrDsBelowDelegation,
        Rule::MissingGlue,
        Rule::DsDigestLength,
        Rule::RdataLength,
        Rule::TypeNotInZone,
        Rule::WildcardDelegation,
    ];

    /// The stable code, kebab-case (as the verifier's findings print it).
    pub fn code(self) -> &'static str {
        match self {
            Rule::CnameAndOtherData => "cname-and-other-data",
            Rule::MultipleCnames => "multiple-cnames",
            Rule::CnameAtApex => "cname-at-apex",
            Rule::MultipleDnames => "multiple-dnames",
            Rule::DataBelowDname => "data-below-dname",
            Rule::ApexWithoutNs => "apex-without-ns",
            Rule::DsAtApex => "ds-at-apex",
            Rule::DsWithoutDelegation => "ds-without-delegation",
            Rule::NsOrDsBelowDelegation => "ns-or-ds-below-delegation",
            Rule::MissingGlue => "missing-glue",
            Rule::DsDigestLength => "ds-digest-length",
            Rule::RdataLength => "rdata-length",
            Rule::TypeNotInZone => "type-not-in-zone",
            Rule::WildcardDelegation => "wildcard-delegation",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One broken rule at one owner and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Owner name of the records concerned.
    pub owner: Name,
    /// Their type.
    pub rtype: Rtype,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, naming the other records involved.
    pub message: String,
}

impl fmt::Display for Violation {
    /// `owner/TYPE  code  message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}  {}  {}", self.owner, self.rtype, self.rule, self.message)
    }
}

/// Says which records to leave out of the check, by type and whether the
/// owner is the apex (the signer drops and remakes some).
pub type Ignore = fn(Rtype, bool) -> bool;

/// Checks every rule on `zone`, whose apex is `origin`. Violations come
/// in canonical order of their owners, then by type and rule.
pub fn check(zone: &Zone, origin: NameRef<'_>) -> Vec<Violation> {
    check_ignoring(zone, origin, |_, _| false)
}

/// Checks every rule on `zone`, leaving out the records `ignore` names.
pub fn check_ignoring(zone: &Zone, origin: NameRef<'_>, ignore: Ignore) -> Vec<Violation> {
    let pass = Pass { zone, origin, ignore };
    let runs = zone.node_runs(rayon::current_num_threads() * 8);
    let mut violations = runs.par_iter().map(|run| pass.check_run(run)).collect::<Vec<_>>().concat();
    violations.sort_by(|a, b| {
        a.owner.as_ref().canonical_cmp(b.owner.as_ref()).then(a.rtype.cmp(&b.rtype)).then(a.rule.cmp(&b.rule))
    });
    violations
}

/// A zone cut or DNAME: the names below it are not the zone's data.
#[derive(Debug, Clone, Copy)]
enum Cut<'a> {
    Delegation(NameRef<'a>),
    Dname(NameRef<'a>),
}

impl<'a> Cut<'a> {
    fn name(self) -> NameRef<'a> {
        match self {
            Cut::Delegation(name) | Cut::Dname(name) => name,
        }
    }
}

/// What a node holds, counted in one look at its RRsets.
#[derive(Debug, Clone, Copy, Default)]
struct Holdings<'a> {
    /// The first type held (the one named when the whole node is wrong).
    first: Option<Rtype>,
    cnames: usize,
    dnames: usize,
    ns: Option<Rrset<'a>>,
    ds: bool,
    /// An A or AAAA record.
    address: bool,
    /// A type that may not stand beside a CNAME.
    not_beside_cname: bool,
    /// Anything but NSEC3 and RRSIG (hashed owners sit below an apex DNAME).
    not_nsec3: bool,
}

impl<'a> Holdings<'a> {
    fn add(&mut self, rrset: Rrset<'a>) {
        let rtype = rrset.rtype();
        self.first.get_or_insert(rtype);
        match rtype {
            Rtype::CNAME => self.cnames = rrset.len(),
            Rtype::DNAME => self.dnames = rrset.len(),
            Rtype::NS => self.ns = Some(rrset),
            Rtype::DS => self.ds = true,
            Rtype::A | Rtype::AAAA => self.address = true,
            _ => {}
        }
        self.not_beside_cname |= !may_stand_beside_cname(rtype);
        self.not_nsec3 |= !matches!(rtype, Rtype::NSEC3 | Rtype::RRSIG);
    }
}

fn may_stand_beside_cname(rtype: Rtype) -> bool {
    matches!(rtype, Rtype::CNAME | Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3)
}

/// One check of one zone.
struct Pass<'a> {
    zone: &'a Zone,
    origin: NameRef<'a>,
    ignore: Ignore,
}

/// A node being checked.
struct Site<'a> {
    node: Node<'a>,
    name: NameRef<'a>,
    at_apex: bool,
    holds: Holdings<'a>,
}

/// The state of the pass over one run of nodes.
struct Walk<'a> {
    /// The cut or DNAME the current node is below.
    cut: Option<Cut<'a>>,
    /// The name servers below the delegation `cut` (in-domain), and
    /// whether their address has been seen among the names below it.
    glue_wanted: Vec<(NameRef<'a>, bool)>,
    out: Vec<Violation>,
}

impl<'a> Walk<'a> {
    /// Marks the glue a node below the current delegation provides.
    fn note_glue(&mut self, site: &Site<'a>) {
        if site.holds.address {
            for (server, seen) in &mut self.glue_wanted {
                *seen |= server.eq_ignore_case(site.name);
            }
        }
    }
}

impl<'a> Pass<'a> {
    fn check_run(&self, run: &NodeRun<'a>) -> Vec<Violation> {
        let mut nodes = run.nodes().peekable();
        let cut = nodes.peek().and_then(|node| self.enclosing_cut(node.name()));
        let mut walk = Walk { cut, glue_wanted: Vec::new(), out: Vec::new() };
        for node in nodes {
            if walk.cut.is_some_and(|c| !node.name().is_below(c.name())) {
                self.leave_cut(&mut walk, true);
            }
            let Some(site) = self.site(node, &mut walk.out) else { continue };
            walk.note_glue(&site);
            self.check_node(&site, &mut walk);
            if walk.cut.is_none() {
                walk.cut = cut_at(&site);
            }
        }
        // The names below the last cut may go on in the next run.
        self.leave_cut(&mut walk, false);
        walk.out
    }

    /// The node with what it holds, its records checked; `None` when it
    /// holds only records to ignore.
    fn site(&self, node: Node<'a>, out: &mut Vec<Violation>) -> Option<Site<'a>> {
        let name = node.name();
        let at_apex = name.eq_ignore_case(self.origin);
        let mut holds = Holdings::default();
        for rrset in node.rrsets().filter(|set| !(self.ignore)(set.rtype(), at_apex)) {
            check_records(&rrset, name, out);
            holds.add(rrset);
        }
        holds.first.map(|_| Site { node, name, at_apex, holds })
    }

    /// Past the names below the current cut: glue still wanted is missing
    /// if they were `all_seen`, else it is looked up.
    fn leave_cut(&self, walk: &mut Walk<'a>, all_seen: bool) {
        if let Some(cut) = walk.cut.take() {
            for (server, seen) in walk.glue_wanted.drain(..) {
                if !seen && (all_seen || !self.server_has_address(server, cut.name())) {
                    walk.out.push(missing_glue(cut.name(), server));
                }
            }
        }
    }

    fn check_node(&self, site: &Site<'a>, walk: &mut Walk<'a>) {
        let (name, holds, out) = (site.name, &site.holds, &mut walk.out);
        if holds.dnames > 1 {
            let message = format!("{} DNAME records at one name; one is allowed", holds.dnames);
            out.push(violation(name, Rtype::DNAME, Rule::MultipleDnames, message));
        }
        match walk.cut {
            Some(Cut::Dname(dname)) => {
                if holds.not_nsec3 {
                    let rtype = holds.first.unwrap_or(Rtype::DNAME);
                    let message = format!("below the DNAME at {dname}: the name can never be reached");
                    out.push(violation(name, rtype, Rule::DataBelowDname, message));
                }
                return;
            }
            Some(Cut::Delegation(delegation)) => occluded_ns_or_ds(name, holds, delegation, out),
            None if site.at_apex => self.check_apex(site, walk),
            None => self.check_below_apex(site, walk),
        }
        if !site.at_apex {
            check_cname(site, &mut walk.out);
        }
    }

    fn check_apex(&self, site: &Site<'a>, walk: &mut Walk<'a>) {
        let (name, holds, out) = (site.name, &site.holds, &mut walk.out);
        if holds.cnames > 0 {
            let message = "CNAME at the apex, which must hold the SOA and NS records".to_owned();
            out.push(violation(name, Rtype::CNAME, Rule::CnameAtApex, message));
        }
        if holds.cnames > 1 {
            out.push(multiple_cnames(name, holds.cnames));
        }
        if holds.ns.is_none() {
            out.push(violation(name, Rtype::NS, Rule::ApexWithoutNs, "no NS records at the apex".to_owned()));
        }
        if holds.ds {
            let message = "DS at the apex: it belongs in the parent zone, at the delegation".to_owned();
            out.push(violation(name, Rtype::DS, Rule::DsAtApex, message));
        }
        self.check_glue(site, walk);
    }

    fn check_below_apex(&self, site: &Site<'a>, walk: &mut Walk<'a>) {
        let (name, holds, out) = (site.name, &site.holds, &mut walk.out);
        if holds.ns.is_some() && name.is_wildcard() {
            let message = "NS at a wildcard name: a delegation cannot be synthesised".to_owned();
            out.push(violation(name, Rtype::NS, Rule::WildcardDelegation, message));
        }
        if holds.ds && holds.ns.is_none() {
            let message = "DS at a name without NS: DS belongs only at a delegation".to_owned();
            out.push(violation(name, Rtype::DS, Rule::DsWithoutDelegation, message));
        }
        self.check_glue(site, walk);
    }

    /// Every name server of an NS RRset (apex or delegation) that lies in
    /// the zone must have an address a resolver can find (Knot's rule):
    /// an A or AAAA record at its name or, outside the delegation itself,
    /// at the wildcard that covers it. One below another delegation is
    /// that zone's business (sibling glue is optional, RFC 9471 §2).
    ///
    /// The glue of a server below the delegation itself is among the
    /// nodes that follow it: the walk notes it there ([`Walk::note_glue`])
    /// rather than looking each one up.
    fn check_glue(&self, site: &Site<'a>, walk: &mut Walk<'a>) {
        let Some(ns) = site.holds.ns else { return };
        for rdata in ns.rdatas() {
            let Some((server, _)) = NameRef::parse_prefix(rdata) else { continue };
            if !self.in_zone(server) {
                continue;
            }
            if !site.at_apex && server.is_below(site.name) {
                walk.glue_wanted.push((server, false));
            } else if !self.server_has_address(server, site.name) {
                walk.out.push(missing_glue(site.name, server));
            }
        }
    }

    /// Is `name` at or below the origin? Most name servers are not, which
    /// their last octets show.
    fn in_zone(&self, name: NameRef<'_>) -> bool {
        let (wire, apex) = (name.wire(), self.origin.wire());
        wire.len() >= apex.len()
            && wire[wire.len() - apex.len()..].eq_ignore_ascii_case(apex)
            && name.is_at_or_below(self.origin)
    }

    fn server_has_address(&self, server: NameRef<'a>, ns_owner: NameRef<'_>) -> bool {
        if let Some(node) = self.zone.node(server) {
            return has_address(&node);
        }
        match self.enclosing_cut(server) {
            Some(Cut::Delegation(cut)) => !cut.eq_ignore_case(ns_owner),
            Some(Cut::Dname(_)) => false,
            None => self.wildcard_has_address(server),
        }
    }

    /// Does the wildcard at the closest encloser of `name` (RFC 4592 §3.3.1)
    /// have an address record?
    fn wildcard_has_address(&self, name: NameRef<'_>) -> bool {
        let mut ancestor = name.parent();
        while let Some(encloser) = ancestor.filter(|a| a.is_at_or_below(self.origin)) {
            if self.zone.has_name_at_or_below(encloser) {
                let mut wire = vec![1, b'*'];
                wire.extend_from_slice(encloser.wire());
                let wildcard = Name::from_wire(&wire);
                return wildcard.and_then(|w| self.zone.node(w.as_ref())).is_some_and(|node| has_address(&node));
            }
            ancestor = encloser.parent();
        }
        false
    }

    /// The outermost zone cut or DNAME strictly above `name` (an apex
    /// DNAME included), found by looking its ancestors up.
    fn enclosing_cut(&self, name: NameRef<'a>) -> Option<Cut<'a>> {
        let apex_labels = self.origin.label_count();
        for labels in apex_labels..name.label_count() {
            let ancestor = name.suffix(labels);
            let Some(node) = self.zone.node(ancestor) else { continue };
            if node.has(Rtype::DNAME) {
                return Some(Cut::Dname(ancestor));
            }
            if labels > apex_labels && node.has(Rtype::NS) {
                return Some(Cut::Delegation(ancestor));
            }
        }
        None
    }
}

fn missing_glue(ns_owner: NameRef<'_>, server: NameRef<'_>) -> Violation {
    let message = format!("name server {server} is in the zone but has no A or AAAA record");
    violation(ns_owner, Rtype::NS, Rule::MissingGlue, message)
}

/// The cut a node makes for the names below it, if any.
fn cut_at<'a>(site: &Site<'a>) -> Option<Cut<'a>> {
    if site.holds.dnames > 0 {
        Some(Cut::Dname(site.name))
    } else if site.holds.ns.is_some() && !site.at_apex {
        Some(Cut::Delegation(site.name))
    } else {
        None
    }
}

fn occluded_ns_or_ds(name: NameRef<'_>, holds: &Holdings<'_>, delegation: NameRef<'_>, out: &mut Vec<Violation>) {
    for (present, rtype) in [(holds.ns.is_some(), Rtype::NS), (holds.ds, Rtype::DS)] {
        if present {
            let message = format!("{rtype} below the delegation at {delegation}: occluded, never served");
            out.push(violation(name, rtype, Rule::NsOrDsBelowDelegation, message));
        }
    }
}

fn check_cname(site: &Site<'_>, out: &mut Vec<Violation>) {
    let holds = &site.holds;
    if holds.cnames > 1 {
        out.push(multiple_cnames(site.name, holds.cnames));
    }
    if holds.cnames == 0 || !holds.not_beside_cname {
        return;
    }
    for rrset in site.node.rrsets().filter(|set| !may_stand_beside_cname(set.rtype())) {
        let message = format!("{} beside a CNAME: an alias holds no other data", rrset.rtype());
        out.push(violation(site.name, rrset.rtype(), Rule::CnameAndOtherData, message));
    }
}

fn multiple_cnames(name: NameRef<'_>, count: usize) -> Violation {
    let message = format!("{count} CNAME records at one name; one is allowed");
    violation(name, Rtype::CNAME, Rule::MultipleCnames, message)
}

/// The rules on single records: types, fixed lengths, DS digests.
fn check_records(rrset: &Rrset<'_>, owner: NameRef<'_>, out: &mut Vec<Violation>) {
    let rtype = rrset.rtype();
    if let Some(why) = not_in_zone(rtype) {
        out.push(violation(owner, rtype, Rule::TypeNotInZone, why.to_owned()));
    }
    if let Some(len) = fixed_rdata_len(rtype) {
        for rdata in rrset.rdatas().filter(|rdata| rdata.len() != len) {
            let message = format!("{rtype} RDATA of {} octets; it has {len}", rdata.len());
            out.push(violation(owner, rtype, Rule::RdataLength, message));
        }
    }
    if rtype == Rtype::DS {
        for ds in rrset.rdatas().filter_map(Ds::parse) {
            if let Some(message) = ds_digest_problem(&ds) {
                out.push(violation(owner, rtype, Rule::DsDigestLength, message));
            }
        }
    }
}

/// Why a type has no place in a zone (the meta types never get here: the
/// reader refuses them).
fn not_in_zone(rtype: Rtype) -> Option<&'static str> {
    match rtype {
        Rtype(0) => Some("TYPE0 is reserved and never a record type (RFC 6895 §3.1)"),
        Rtype::MD | Rtype::MF => Some("MD and MF are obsolete: use MX (RFC 973, RFC 1035 §3.3.4)"),
        Rtype::NULL => Some("NULL records are not allowed in master files (RFC 1035 §3.3.10)"),
        _ => None,
    }
}

/// RDATA length of the fixed-size types that `rdata.rs` does not describe
/// (and so reads only in the RFC 3597 form, unchecked). A, AAAA and the
/// other described types are checked by the reader.
fn fixed_rdata_len(rtype: Rtype) -> Option<usize> {
    match rtype {
        Rtype::EUI48 | Rtype::L32 => Some(6),
        Rtype::EUI64 => Some(8),
        Rtype::NID | Rtype::L64 => Some(10),
        _ => None,
    }
}

/// A digest of the wrong length for its type, or an empty one (an
/// unknown digest type is allowed: validators ignore it).
fn ds_digest_problem(ds: &Ds<'_>) -> Option<String> {
    let (expected, hash) = match ds.digest_type {
        1 => (20, "SHA-1"),
        2 => (32, "SHA-256"),
        3 => (32, "GOST R 34.11-94"),
        4 => (48, "SHA-384"),
        _ if ds.digest.is_empty() => return Some(format!("DS (key tag {}) with an empty digest", ds.key_tag)),
        _ => return None,
    };
    (ds.digest.len() != expected).then(|| {
        format!(
            "DS (key tag {}) digest type {} ({hash}) with a {}-octet digest; it has {expected}",
            ds.key_tag,
            ds.digest_type,
            ds.digest.len()
        )
    })
}

fn has_address(node: &Node<'_>) -> bool {
    node.has(Rtype::A) || node.has(Rtype::AAAA)
}

fn violation(owner: NameRef<'_>, rtype: Rtype, rule: Rule, message: String) -> Violation {
    Violation { owner: owner.to_owned(), rtype, rule, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::read_zone_str;

    const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";

    fn origin() -> Name {
        Name::from_text("example.", None).expect("valid")
    }

    /// The violations of HEAD + `body`, as `owner/TYPE code`.
    fn found(body: &str) -> Vec<String> {
        let text = format!("{HEAD}{body}");
        let zone = read_zone_str(&text, &origin(), std::path::Path::new("t.zone")).expect("zone reads");
        check(&zone, origin().as_ref()).iter().map(|v| format!("{}/{} {}", v.owner, v.rtype, v.rule)).collect()
    }

    #[test]
    fn a_good_zone_passes() {
        let ds = format!("DS 1 13 2 {}", "00".repeat(32));
        let body = format!("www CNAME host\nhost A 192.0.2.2\nsub NS ns.sub\nsub {ds}\nns.sub A 192.0.2.3\n");
        assert!(found(&body).is_empty());
        assert!(found("alias DNAME x.net.\n*.w A 192.0.2.4\nd NS x.w\n").is_empty());
    }

    #[test]
    fn each_rule_is_found() {
        let ds = format!("DS 1 13 2 {}", "00".repeat(32));
        let cases: [(String, &[&str]); 14] = [
            ("www CNAME x.net.\nwww A 192.0.2.4\n".into(), &["www.example./A cname-and-other-data"]),
            ("www CNAME x.net.\nwww CNAME y.net.\n".into(), &["www.example./CNAME multiple-cnames"]),
            ("@ CNAME x.net.\n".into(), &["example./CNAME cname-at-apex"]),
            ("d DNAME x.net.\nd DNAME y.net.\n".into(), &["d.example./DNAME multiple-dnames"]),
            ("d DNAME x.net.\na.d A 192.0.2.5\n".into(), &["a.d.example./A data-below-dname"]),
            (format!("@ {ds}\n"), &["example./DS ds-at-apex"]),
            (format!("x A 192.0.2.9\nx {ds}\n"), &["x.example./DS ds-without-delegation"]),
            ("sub NS ns.other.net.\na.sub NS ns.other.net.\n".into(), &["a.sub.example./NS ns-or-ds-below-delegation"]),
            ("sub NS ns.sub\n".into(), &["sub.example./NS missing-glue"]),
            ("sub NS ns.other.net.\nsub DS 1 13 2 0000\n".into(), &["sub.example./DS ds-digest-length"]),
            ("x TYPE108 \\# 5 0102030405\n".into(), &["x.example./EUI48 rdata-length"]),
            ("x TYPE0 \\# 0\n".into(), &["x.example./TYPE0 type-not-in-zone"]),
            ("x MD ns.other.net.\n".into(), &["x.example./MD type-not-in-zone"]),
            ("* NS ns.other.net.\n".into(), &["*.example./NS wildcard-delegation"]),
        ];
        for (body, expected) in cases {
            assert_eq!(found(&body), expected, "{body}");
        }
    }

    #[test]
    fn apex_without_ns() {
        let text = "$ORIGIN example.\n@ 300 SOA ns1 h 1 2 3 4 5\n";
        let zone = read_zone_str(text, &origin(), std::path::Path::new("t")).expect("reads");
        let rules: Vec<Rule> = check(&zone, origin().as_ref()).iter().map(|v| v.rule).collect();
        assert_eq!(rules, [Rule::ApexWithoutNs]);
    }

    #[test]
    fn glue_where_a_resolver_finds_it() {
        // Sibling glue, a server below another delegation, a wildcard.
        assert!(found("a NS ns.b\nb NS ns.b\nns.b A 192.0.2.8\n").is_empty());
        assert!(found("a NS ns.b\nb NS ns.other.net.\n").is_empty());
        assert!(found("a NS x.w\n*.w AAAA 2001:db8::1\n").is_empty());
        // Not: a server below the delegation itself, a CNAME, one below a DNAME.
        assert_eq!(found("a NS x.a\n*.a A 192.0.2.1\n"), ["a.example./NS missing-glue"]);
        assert_eq!(found("a NS alias\nalias CNAME x.net.\n"), ["a.example./NS missing-glue"]);
        assert_eq!(found("a NS ns.d\nd DNAME x.net.\n"), ["a.example./NS missing-glue"]);
        assert_eq!(found("@ NS ns2\n"), ["example./NS missing-glue"]);
    }

    #[test]
    fn dnssec_records_may_stand_beside_a_cname_and_below_an_apex_dname() {
        let rrsig = "RRSIG CNAME 13 2 300 20300101000000 20200101000000 1 example. AAAA";
        assert!(found(&format!("www CNAME x.net.\nwww {rrsig}\nwww NSEC z.example. CNAME RRSIG NSEC\n")).is_empty());
        assert_eq!(found("www CNAME x.net.\nwww KEY \\# 4 01000303\n"), ["www.example./KEY cname-and-other-data"]);
        let text = "$ORIGIN example.\n$TTL 300\n@ SOA ns.other.net. h 1 2 3 4 5\n@ NS ns.other.net.\n@ DNAME x.net.\n\
                    0p9mhaveqvm6t7vbl5lop2u3t2rp3tom NSEC3 1 0 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom DNAME\n";
        let zone = read_zone_str(text, &origin(), std::path::Path::new("t")).expect("reads");
        assert!(check(&zone, origin().as_ref()).is_empty(), "an apex DNAME is allowed (RFC 6672)");
    }

    #[test]
    fn ignored_records_are_not_judged() {
        let text = format!("{HEAD}www CNAME x.net.\nwww NSEC3PARAM 1 0 0 -\n");
        let zone = read_zone_str(&text, &origin(), std::path::Path::new("t")).expect("reads");
        assert_eq!(check(&zone, origin().as_ref()).len(), 1);
        assert!(check_ignoring(&zone, origin().as_ref(), |rtype, _| rtype == Rtype::NSEC3PARAM).is_empty());
    }

    /// The reader checks the types `rdata.rs` describes; this module only
    /// those it does not. Should `rdata.rs` learn one, drop it here.
    #[test]
    fn fixed_lengths_are_not_checked_twice() {
        for rtype in [Rtype::EUI48, Rtype::EUI64, Rtype::NID, Rtype::L32, Rtype::L64] {
            assert!(crate::zone::rdata::check_rdata(rtype, &[0]).is_ok(), "{rtype} is checked by the reader now");
        }
        assert!(crate::zone::rdata::check_rdata(Rtype::A, &[0; 3]).is_err());
        assert!(crate::zone::rdata::check_rdata(Rtype::AAAA, &[0; 4]).is_err());
    }

    #[test]
    fn runs_see_the_cut_above_them() {
        let mut text = format!("{HEAD}d DNAME x.net.\n");
        for i in 0..500 {
            text.push_str(&format!("n{i}.d TXT \"x\"\n"));
        }
        let origin = origin();
        let zone = read_zone_str(&text, &origin, std::path::Path::new("t")).expect("reads");
        let pass = Pass { zone: &zone, origin: origin.as_ref(), ignore: |_, _| false };
        for pieces in [1, 7, 64] {
            let found: usize = zone.node_runs(pieces).iter().map(|run| pass.check_run(run).len()).sum();
            assert_eq!(found, 500, "{pieces} pieces");
        }
    }
}
