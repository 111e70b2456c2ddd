//! Zone structure, found in one pass over the nodes in canonical order:
//! the apex, zone cuts, glue and occluded data, NSEC3 nodes, and the
//! empty non-terminals between them.
//!
//! The pass relies on a property of the canonical order: all names below
//! a name follow it directly, before any name that is not below it. So a
//! zone cut's glue is the run of nodes after the cut that are below it,
//! and an empty non-terminal shows as an ancestor of a node that is not an
//! ancestor of the node before it.

use super::arena::{Node, Zone};
use super::name::NameRef;
use super::rtype::Rtype;

/// What a node is to the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The zone apex.
    Apex,
    /// Authoritative data (a wildcard or DNAME owner included).
    Authoritative,
    /// A zone cut: NS below the apex. Only DS and NSEC (with their RRSIGs)
    /// are authoritative here; `secure` says whether it has a DS RRset.
    Delegation {
        /// A DS RRset is present.
        secure: bool,
    },
    /// Below a zone cut or a DNAME: glue or occluded data, not
    /// authoritative, never signed.
    Glue,
    /// Holds NSEC3 records (a hashed owner name).
    Nsec3,
}

impl Role {
    /// Is this a name that exists in the zone's authoritative namespace
    /// (and so needs NSEC/NSEC3 coverage)?
    pub(crate) fn is_authoritative_name(self) -> bool {
        matches!(self, Role::Apex | Role::Authoritative | Role::Delegation { .. })
    }

    /// Is an RRset of `rtype` at a node of this role authoritative data
    /// that must be signed?
    pub(crate) fn signs(self, rtype: Rtype) -> bool {
        match self {
            Role::Apex | Role::Authoritative => rtype != Rtype::RRSIG,
            Role::Delegation { .. } => matches!(rtype, Rtype::DS | Rtype::NSEC),
            Role::Nsec3 => rtype == Rtype::NSEC3,
            Role::Glue => false,
        }
    }

    /// The types that denial-of-existence records must list for a node of
    /// this role that holds `types` (RFC 4035 §2.3: at a delegation only
    /// NS, DS and the DNSSEC types).
    pub(crate) fn listed_type(self, rtype: Rtype) -> bool {
        match self {
            Role::Delegation { .. } => {
                matches!(rtype, Rtype::NS | Rtype::DS | Rtype::RRSIG | Rtype::NSEC)
            }
            Role::Apex | Role::Authoritative => true,
            Role::Glue | Role::Nsec3 => false,
        }
    }
}

/// A node with its role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZoneNode<'a> {
    /// The node.
    pub node: Node<'a>,
    /// Its role.
    pub role: Role,
}

/// An empty non-terminal: a name with no records that has authoritative
/// names below it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmptyNonTerminal<'a> {
    /// The name.
    pub name: NameRef<'a>,
    /// True when every authoritative name below it is an insecure
    /// delegation (with its glue): under NSEC3 opt-out such an ENT may go
    /// without an NSEC3 (RFC 5155 §7.1).
    pub only_insecure_below: bool,
}

/// The zone's structure.
#[derive(Debug)]
pub(crate) struct ZoneTree<'a> {
    /// Every node, in canonical order, with its role.
    pub nodes: Vec<ZoneNode<'a>>,
    /// Every empty non-terminal in the authoritative namespace, in
    /// canonical order (each is found just before its first descendant).
    pub empty_non_terminals: Vec<EmptyNonTerminal<'a>>,
}

impl<'a> ZoneTree<'a> {
    /// Classifies every node of `zone`.
    pub(crate) fn build(zone: &'a Zone) -> ZoneTree<'a> {
        let apex = zone.origin();
        let mut nodes = Vec::new();
        let mut ents: Vec<EmptyNonTerminal<'a>> = Vec::new();
        // Nodes whose descendants are glue: the last zone cut or DNAME.
        let mut cut: Option<NameRef<'a>> = None;
        // ENTs whose descendants are still being walked (index into `ents`).
        let mut open_ents: Vec<usize> = Vec::new();
        let mut previous: Option<NameRef<'a>> = None;
        for node in zone.nodes() {
            let name = node.name();
            if cut.is_some_and(|c| !name.is_below(c)) {
                cut = None;
            }
            open_ents.retain(|&i| name.is_below(ents[i].name));
            let role = classify(&node, name, apex, cut.is_some());
            if role != Role::Glue && role != Role::Nsec3 {
                for ent in missing_ancestors(name, previous, apex) {
                    open_ents.push(ents.len());
                    ents.push(EmptyNonTerminal { name: ent, only_insecure_below: true });
                }
                if role != (Role::Delegation { secure: false }) {
                    for &i in &open_ents {
                        ents[i].only_insecure_below = false;
                    }
                }
            }
            if matches!(role, Role::Delegation { .. }) || (role == Role::Authoritative && node.has(Rtype::DNAME)) {
                cut = Some(name);
            }
            if role != Role::Nsec3 {
                previous = Some(name);
            }
            nodes.push(ZoneNode { node, role });
        }
        ZoneTree { nodes, empty_non_terminals: ents }
    }
}

fn classify(node: &Node<'_>, name: NameRef<'_>, apex: NameRef<'_>, below_cut: bool) -> Role {
    if below_cut {
        Role::Glue
    } else if name.eq_ignore_case(apex) {
        Role::Apex
    } else if node.has(Rtype::NSEC3) {
        Role::Nsec3
    } else if node.has(Rtype::NS) {
        Role::Delegation { secure: node.has(Rtype::DS) }
    } else {
        Role::Authoritative
    }
}

/// The ancestors of `name`, strictly between it and the apex, that are
/// not ancestors of (or equal to) `previous`: the names that must be empty
/// non-terminals, since an existing one would sort between `previous`
/// and `name`. Returned nearest the apex first.
fn missing_ancestors<'a>(name: NameRef<'a>, previous: Option<NameRef<'_>>, apex: NameRef<'_>) -> Vec<NameRef<'a>> {
    let mut found = Vec::new();
    let mut ancestor = name.parent();
    while let Some(a) = ancestor {
        if !a.is_below(apex) || previous.is_some_and(|p| p.is_at_or_below(a)) {
            break;
        }
        found.push(a);
        ancestor = a.parent();
    }
    found.reverse();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::arena::ZoneBuilder;
    use crate::zone::name::Name;

    fn zone(records: &[(&str, Rtype)]) -> Zone {
        let origin = Name::from_text("example.", None).expect("valid");
        let mut builder = ZoneBuilder::new(origin, 1);
        for (owner, rtype) in records {
            let owner = Name::from_text(owner, None).expect("valid");
            builder.push(owner.as_ref(), *rtype, 3600, b"\x00");
        }
        builder.finish()
    }

    #[test]
    fn roles_and_empty_non_terminals() {
        let zone = zone(&[
            ("example.", Rtype::SOA),
            ("example.", Rtype::NS),
            ("a.b.c.example.", Rtype::A),
            ("sub.dept.example.", Rtype::NS),
            ("ns.sub.dept.example.", Rtype::A),
            ("deep.ns.sub.dept.example.", Rtype::A),
            ("secure.example.", Rtype::NS),
            ("secure.example.", Rtype::DS),
            ("x.y.secure.example.", Rtype::A),
            ("dn.example.", Rtype::DNAME),
            ("under.dn.example.", Rtype::A),
            ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", Rtype::NSEC3),
            ("z.example.", Rtype::TXT),
        ]);
        let tree = ZoneTree::build(&zone);
        let roles: Vec<(String, Role)> = tree.nodes.iter().map(|n| (n.node.name().to_string(), n.role)).collect();
        let expect = |name: &str| roles.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
        assert_eq!(expect("example."), Some(Role::Apex));
        assert_eq!(expect("a.b.c.example."), Some(Role::Authoritative));
        assert_eq!(expect("sub.dept.example."), Some(Role::Delegation { secure: false }));
        assert_eq!(expect("ns.sub.dept.example."), Some(Role::Glue));
        assert_eq!(expect("deep.ns.sub.dept.example."), Some(Role::Glue));
        assert_eq!(expect("secure.example."), Some(Role::Delegation { secure: true }));
        assert_eq!(expect("x.y.secure.example."), Some(Role::Glue));
        assert_eq!(expect("under.dn.example."), Some(Role::Glue));
        assert_eq!(expect("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example."), Some(Role::Nsec3));
        let ents: Vec<(String, bool)> =
            tree.empty_non_terminals.iter().map(|e| (e.name.to_string(), e.only_insecure_below)).collect();
        assert_eq!(
            ents,
            [
                ("c.example.".to_string(), false),
                ("b.c.example.".to_string(), false),
                ("dept.example.".to_string(), true)
            ]
        );
    }
}
