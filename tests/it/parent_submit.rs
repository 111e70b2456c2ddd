//! The parent side against a real server: RFC 2136 updates of a child's
//! DS RRset at a Knot primary of `test.` that accepts them under a TSIG
//! key (set, replaced, emptied; a wrong key, no key and a zone the
//! server does not have refused and named), and the discovery of the
//! parent's name servers from the same Knot answering for `test.`.
//! Knot and signet each have an address of their own, and Knot takes
//! updates from signet's address only (an ACL by address and key, as a
//! registry's would be); signet sends from that address.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::OpCode;
use signet::parent::discover::{ParentServer, parent_servers};
use signet::parent::submit::{SubmitError, WantedDs, push_update_from};
use signet::xfr::client::{Request, exchange};
use signet::xfr::tsig::TsigKey;
use signet::xfr::wire::{CLASS_IN, ParsedMessage, Question};
use signet::zone::{Name, Rtype};

use common::dns_servers::{Server, Tsig, free_addr, knotd_update_primary_at, random_base};
use common::have_tool;

const PARENT_ZONE: &str = "$ORIGIN test.\n$TTL 300\n\
@ SOA ns1.test. hostmaster.test. 1 3600 600 86400 300\n\
@ NS ns1.test.\n@ NS ns2.test.\n\
ns1 A 127.0.0.1\nns2 A 127.0.0.2\nns2 AAAA ::1\n\
child NS ns1.child.test.\nns1.child A 127.0.0.3\n\
other-child NS ns1.child.test.\n";

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

fn key_of(tsig: &Tsig) -> Arc<TsigKey> {
    let secret = data_encoding::BASE64.decode(tsig.secret_b64.as_bytes()).expect("base64 secret");
    Arc::new(TsigKey::new(name(&format!("{}.", tsig.name)), secret))
}

/// A DS RDATA: key tag, algorithm 13, SHA-256, a digest of `fill`.
fn ds(tag: u16, fill: u8) -> Vec<u8> {
    let mut rdata = tag.to_be_bytes().to_vec();
    rdata.extend_from_slice(&[13, 2]);
    rdata.extend_from_slice(&[fill; 32]);
    rdata
}

fn wanted(zone: &str, ds: Vec<Vec<u8>>) -> WantedDs {
    WantedDs { zone: name(zone), ds, dnskeys: Vec::new(), ds_ttl: 1234, dnskey_ttl: 600 }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The DS RRset `server` serves at `owner`: (TTL, RDATA), sorted.
fn served_ds(runtime: &tokio::runtime::Runtime, server: SocketAddr, owner: &str) -> Vec<(u32, Vec<u8>)> {
    let question = Question { name: name(owner), qtype: Rtype::DS, qclass: CLASS_IN };
    let request = Request::new(Request::metadata(OpCode::Query), &question, |_| {}, None);
    let answer = runtime.block_on(exchange(server, &request, Duration::from_secs(5))).expect("DS answer");
    let parsed = ParsedMessage::parse(&answer).expect("parse");
    assert_eq!(u16::from(parsed.header.response_code), 0, "DS query answered {:?}", parsed.header.response_code);
    let mut set: Vec<(u32, Vec<u8>)> = parsed
        .answers()
        .map(|r| r.expect("record"))
        .filter(|r| r.rtype == Rtype::DS)
        .map(|r| (r.ttl, r.rdata.into_owned()))
        .collect();
    set.sort();
    set
}

fn expected(ttl: u32, ds: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
    let mut set: Vec<(u32, Vec<u8>)> = ds.iter().map(|d| (ttl, d.clone())).collect();
    set.sort();
    set
}

/// Knot on an address of its own, and the address signet's updates come
/// from (the only one Knot's update ACL names).
struct Parent {
    knot: Server,
    signer: IpAddr,
    /// Another local address, which the ACL does not name.
    stranger: IpAddr,
}

fn start(dir: &std::path::Path, key: &Tsig) -> Option<Parent> {
    if !["knotd", "knotc"].iter().all(|t| have_tool(t)) {
        return None;
    }
    let base = random_base();
    let (signer, stranger) = (base(2), base(3));
    let knot = knotd_update_primary_at(free_addr(base(1)), &dir.join("knot"), "test.", PARENT_ZONE, signer, key);
    Some(Parent { knot, signer, stranger })
}

/// One timed push; prints how long it took.
fn push(
    runtime: &tokio::runtime::Runtime,
    (server, from): (&Server, IpAddr),
    key: Option<&Arc<TsigKey>>,
    parent: &str,
    wanted: &WantedDs,
) -> Result<(), SubmitError> {
    let started = Instant::now();
    let outcome = runtime.block_on(push_update_from(server.addr(), Some(from), key, &name(parent), wanted));
    let said = outcome.as_ref().map_err(ToString::to_string);
    eprintln!("push of {} DS for {} to {parent}: {said:?} in {:?}", wanted.ds.len(), wanted.zone, started.elapsed());
    outcome
}

#[test]
fn ds_rrset_set_replaced_and_emptied_by_update_with_the_right_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsig = Tsig::generate("parent-update");
    let Some(parent) = start(dir.path(), &tsig) else { return };
    let (knot, at) = (&parent.knot, (&parent.knot, parent.signer));
    let (runtime, key) = (runtime(), key_of(&tsig));
    assert!(served_ds(&runtime, knot.addr(), "child.test.").is_empty());

    let first = vec![ds(1111, 0xAA), ds(2222, 0xBB)];
    push(&runtime, at, Some(&key), "test.", &wanted("child.test.", first.clone())).expect("first push");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), expected(1234, &first), "{}", knot.log());

    // A second push replaces the set: the old DS gone, the new ones there.
    let second = vec![ds(2222, 0xBB), ds(3333, 0xCC)];
    let replace = WantedDs { ds_ttl: 600, ..wanted("child.test.", second.clone()) };
    push(&runtime, at, Some(&key), "test.", &replace).expect("second push");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), expected(600, &second), "{}", knot.log());

    // The same push again changes nothing and is still a success.
    push(&runtime, at, Some(&key), "test.", &replace).expect("repeated push");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), expected(600, &second));

    // Another child's DS are not touched by this child's updates.
    let other = vec![ds(4444, 0xDD)];
    push(&runtime, at, Some(&key), "test.", &wanted("other-child.test.", other.clone())).expect("other child");

    // An empty wanted set removes every DS of the child.
    push(&runtime, at, Some(&key), "test.", &wanted("child.test.", Vec::new())).expect("empty push");
    assert!(served_ds(&runtime, knot.addr(), "child.test.").is_empty(), "{}", knot.log());
    assert_eq!(served_ds(&runtime, knot.addr(), "other-child.test."), expected(1234, &other));
}

#[test]
fn refusals_are_named_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsig = Tsig::generate("parent-update");
    let Some(parent) = start(dir.path(), &tsig) else { return };
    let (knot, at) = (&parent.knot, (&parent.knot, parent.signer));
    let (runtime, key) = (runtime(), key_of(&tsig));
    let set = vec![ds(1111, 0xAA)];
    push(&runtime, at, Some(&key), "test.", &wanted("child.test.", set.clone())).expect("first push");
    let before = served_ds(&runtime, knot.addr(), "child.test.");
    let other_set = wanted("child.test.", vec![ds(9999, 0x99)]);

    // The right key name with another secret: a TSIG failure, named.
    let wrong = key_of(&tsig.with_other_secret());
    let error = push(&runtime, at, Some(&wrong), "test.", &other_set).expect_err("wrong key");
    assert!(matches!(error, SubmitError::Tsig { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("TSIG") && text.contains("parent-update") && text.contains(&knot.addr().to_string()),
        "{text}"
    );
    assert!(!text.contains(&tsig.secret_b64), "the secret is never named: {text}");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), before);

    // The right key from an address the ACL does not name: refused
    // (Knot answers NOTAUTH with TSIG BADKEY: no ACL entry matched the
    // address and key together), and nothing changes. Which address
    // signet sends from is its part.
    let error = push(&runtime, (knot, parent.stranger), Some(&key), "test.", &other_set).expect_err("stranger");
    assert!(matches!(error, SubmitError::Tsig { .. } | SubmitError::Rcode { .. }), "{error:?}");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), before);

    // A key the server does not know.
    let stranger = key_of(&Tsig::generate("stranger"));
    let error = push(&runtime, at, Some(&stranger), "test.", &other_set).expect_err("unknown key");
    assert!(matches!(error, SubmitError::Tsig { .. }), "{error:?}");
    assert!(error.to_string().contains("BADKEY"), "{error}");

    // No key at all: the ACL refuses it.
    let error = push(&runtime, at, None, "test.", &other_set).expect_err("unsigned");
    let SubmitError::Rcode { rcode, .. } = &error else { panic!("{error:?}") };
    assert!(["REFUSED", "NOTAUTH"].contains(&rcode.as_str()), "{error}");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), before);

    // A parent zone the server does not have: Knot answers NOTAUTH,
    // unsigned; signed or not, the RCODE is named.
    let elsewhere = wanted("child.example.", set.clone());
    let error = push(&runtime, at, Some(&key), "example.", &elsewhere).expect_err("not its zone");
    let text = error.to_string();
    assert!(matches!(error, SubmitError::Tsig { .. }), "{error:?}");
    assert!(text.contains("not signed (it says NOTAUTH)") && text.contains("parent zone example."), "{text}");
    let error = push(&runtime, at, None, "example.", &elsewhere).expect_err("not its zone");
    let SubmitError::Rcode { rcode, .. } = &error else { panic!("{error:?}") };
    assert!(["NOTAUTH", "NOTZONE"].contains(&rcode.as_str()), "{error}");
    assert!(error.to_string().contains("parent zone example."), "{error}");
    assert_eq!(served_ds(&runtime, knot.addr(), "child.test."), before);
}

#[test]
fn parent_servers_found_through_an_answering_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(Parent { knot, .. }) = start(dir.path(), &Tsig::generate("parent-update")) else { return };
    let runtime = runtime();
    for zone in ["child.test.", "deeper.nowhere.test."] {
        let started = Instant::now();
        let found = runtime.block_on(parent_servers(knot.addr(), &name(zone), Duration::from_secs(5)));
        let found = found.unwrap_or_else(|e| panic!("{zone}: {e}\n{}", knot.log()));
        eprintln!("parent of {zone}: {} with {:?} in {:?}", found.parent_zone, found.addresses(), started.elapsed());
        assert_eq!(found.parent_zone, name("test."));
        let mut servers = found.servers.clone();
        servers.sort_by_key(|s| s.name.to_string());
        assert_eq!(
            servers,
            vec![
                ParentServer { name: name("ns1.test."), addrs: vec!["127.0.0.1:53".parse().expect("addr")] },
                ParentServer {
                    name: name("ns2.test."),
                    addrs: vec!["127.0.0.2:53".parse().expect("addr"), "[::1]:53".parse().expect("addr")],
                },
            ]
        );
    }
    // Below a delegation an authoritative server refers: not a resolver.
    let error = runtime
        .block_on(parent_servers(knot.addr(), &name("grandchild.child.test."), Duration::from_secs(5)))
        .expect_err("referral");
    assert!(error.to_string().contains("referral"), "{error}");
}
