use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{RData, Record, RecordType};

use super::*;

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

fn hname(text: &str) -> hickory_proto::rr::Name {
    text.parse().expect("name")
}

/// What the fake resolver answers: RCODE, AA, and the three sections;
/// `None`: no answer at all.
#[derive(Debug, Default)]
struct Reply {
    rcode: Option<ResponseCode>,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    /// Another question than the one asked, echoed.
    other_question: Option<Query>,
}

fn record(owner: &str, rdata: RData) -> Record {
    Record::from_rdata(hname(owner), 300, rdata)
}

fn ns(owner: &str, target: &str) -> Record {
    record(owner, RData::NS(NS(hname(target))))
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    record(owner, RData::A(A(Ipv4Addr::from(ip))))
}

fn soa(owner: &str) -> Record {
    let soa = SOA::new(hname("ns1.test."), hname("hostmaster.test."), 1, 3600, 600, 86400, 300);
    record(owner, RData::SOA(soa))
}

type Handler = fn(&str, RecordType) -> Option<Reply>;

/// A resolver on 127.0.0.1 answering by `handler`; the questions it was
/// asked, as `name TYPE`.
async fn fake_resolver(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
            let Some(question) = query.queries.first().cloned() else { continue };
            assert!(query.metadata.recursion_desired, "RD is set");
            let qname = question.name().to_string();
            log.lock().expect("log").push(format!("{qname} {}", question.query_type()));
            let Some(reply) = handler(&qname, question.query_type()) else { continue };
            let mut answer = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
            answer.metadata.response_code = reply.rcode.unwrap_or(ResponseCode::NoError);
            answer.metadata.authoritative = reply.authoritative;
            answer.metadata.recursion_available = true;
            answer.add_query(reply.other_question.unwrap_or(question));
            answer.add_answers(reply.answers);
            answer.add_authorities(reply.authorities);
            answer.add_additionals(reply.additionals);
            let _ = socket.send_to(&answer.to_vec().expect("answer bytes"), peer).await;
        }
    });
    (addr, asked)
}

fn nxdomain() -> Option<Reply> {
    Some(Reply { rcode: Some(ResponseCode::NXDomain), authorities: vec![soa("test.")], ..Reply::default() })
}

fn nodata(apex: &str) -> Option<Reply> {
    Some(Reply { authorities: vec![soa(apex)], ..Reply::default() })
}

/// `test.` holds the delegation; `y.test.` does not exist; ns1.test. has
/// glue, ns2.example. an alias with an A and an AAAA.
fn walk_handler(qname: &str, qtype: RecordType) -> Option<Reply> {
    match (qname, qtype) {
        ("y.test.", RecordType::NS) => nxdomain(),
        ("test.", RecordType::NS) => Some(Reply {
            answers: vec![ns("test.", "ns1.test."), ns("test.", "ns2.example.")],
            additionals: vec![a("ns1.test.", [192, 0, 2, 1])],
            ..Reply::default()
        }),
        ("ns1.test.", RecordType::AAAA) => nodata("test."),
        ("ns2.example.", RecordType::A) => Some(Reply {
            answers: vec![
                record("ns2.example.", RData::CNAME(CNAME(hname("host.example.")))),
                a("host.example.", [192, 0, 2, 2]),
            ],
            ..Reply::default()
        }),
        ("ns2.example.", RecordType::AAAA) => Some(Reply {
            answers: vec![record("ns2.example.", RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))))],
            ..Reply::default()
        }),
        _ => Some(Reply { rcode: Some(ResponseCode::ServFail), ..Reply::default() }),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn discover(
    handler: Handler,
    zone: &str,
    timeout: Duration,
) -> (Result<Discovered, DiscoverError>, SocketAddr, Vec<String>) {
    runtime().block_on(async {
        let (resolver, asked) = fake_resolver(handler).await;
        let found = parent_servers(resolver, &name(zone), timeout).await;
        let asked = asked.lock().expect("log").clone();
        (found, resolver, asked)
    })
}

#[test]
fn walks_up_to_the_first_ns_rrset_and_takes_glue_then_the_resolver() {
    let (found, _, asked) = discover(walk_handler, "x.y.test.", Duration::from_secs(5));
    let found = found.expect("found");
    assert_eq!(found.parent_zone, name("test."));
    let v6: SocketAddr = "[2001:db8::2]:53".parse().expect("addr");
    assert_eq!(
        found.servers,
        vec![
            ParentServer { name: name("ns1.test."), addrs: vec![([192, 0, 2, 1], 53).into()] },
            ParentServer { name: name("ns2.example."), addrs: vec![([192, 0, 2, 2], 53).into(), v6] },
        ]
    );
    assert_eq!(found.addresses().len(), 3);
    // The glue of ns1.test. was taken: its A was not asked for.
    assert_eq!(asked, ["y.test. NS", "test. NS", "ns1.test. AAAA", "ns2.example. A", "ns2.example. AAAA"]);
}

#[test]
fn servfail_is_an_error_naming_the_resolver_and_the_question() {
    let (found, resolver, _) = discover(walk_handler, "child.other.", Duration::from_secs(5));
    let error = found.expect_err("SERVFAIL");
    assert!(matches!(error, DiscoverError::Rcode { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&resolver.to_string()) && text.contains("SERVFAIL") && text.contains("other. NS"), "{text}");
}

#[test]
fn a_referral_is_not_an_answer() {
    fn referral(qname: &str, _: RecordType) -> Option<Reply> {
        Some(Reply { authorities: vec![ns(qname, "ns.elsewhere.")], ..Reply::default() })
    }
    let (found, _, _) = discover(referral, "child.test.", Duration::from_secs(5));
    let error = found.expect_err("referral");
    assert!(matches!(error, DiscoverError::Referral { .. }), "{error:?}");
    assert!(error.to_string().contains("not a recursive resolver"), "{error}");
}

#[test]
fn no_ns_up_to_the_root_and_the_root_itself_are_errors() {
    fn nothing(_: &str, _: RecordType) -> Option<Reply> {
        nodata(".")
    }
    let (found, _, asked) = discover(nothing, "a.b.", Duration::from_secs(5));
    assert!(matches!(found, Err(DiscoverError::NoParent { .. })), "{found:?}");
    assert_eq!(asked, ["b. NS", ". NS"]);
    let (found, _, asked) = discover(nothing, ".", Duration::from_secs(5));
    assert!(matches!(found, Err(DiscoverError::Root)), "{found:?}");
    assert!(asked.is_empty());
}

#[test]
fn name_servers_without_any_address_are_an_error() {
    fn no_addresses(qname: &str, qtype: RecordType) -> Option<Reply> {
        match qtype {
            RecordType::NS => Some(Reply { answers: vec![ns(qname, "ns.nowhere.")], ..Reply::default() }),
            _ => nxdomain(),
        }
    }
    let (found, _, _) = discover(no_addresses, "child.test.", Duration::from_secs(5));
    let error = found.expect_err("no address");
    assert!(matches!(error, DiscoverError::NoAddresses { .. }), "{error:?}");
    assert!(error.to_string().contains("ns.nowhere."), "{error}");
}

#[test]
fn an_answer_to_another_question_is_refused() {
    fn other(_: &str, _: RecordType) -> Option<Reply> {
        let query = Query::query(hname("evil.example."), RecordType::NS);
        Some(Reply {
            answers: vec![ns("evil.example.", "ns.evil.example.")],
            other_question: Some(query),
            ..Reply::default()
        })
    }
    let (found, _, _) = discover(other, "child.test.", Duration::from_secs(5));
    assert!(matches!(found, Err(DiscoverError::Malformed { .. })), "{found:?}");
}

#[test]
fn a_silent_resolver_is_a_timeout_naming_it() {
    fn silent(_: &str, _: RecordType) -> Option<Reply> {
        None
    }
    let started = std::time::Instant::now();
    let (found, resolver, _) = discover(silent, "child.test.", Duration::from_millis(300));
    let error = found.expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(error.to_string().contains(&resolver.to_string()), "{error}");
}

#[test]
fn an_authoritative_nodata_walks_up() {
    fn authoritative(qname: &str, qtype: RecordType) -> Option<Reply> {
        match (qname, qtype) {
            ("test.", RecordType::NS) => Some(Reply {
                authoritative: true,
                answers: vec![ns("test.", "ns1.test.")],
                additionals: vec![a("ns1.test.", [127, 0, 0, 1])],
                ..Reply::default()
            }),
            ("ns1.test.", RecordType::AAAA) => nodata("test."),
            // An empty non-terminal of test.: NODATA with the SOA.
            _ => Some(Reply { authoritative: true, authorities: vec![soa("test.")], ..Reply::default() }),
        }
    }
    let (found, _, _) = discover(authoritative, "child.ent.test.", Duration::from_secs(5));
    let found = found.expect("found");
    assert_eq!(found.parent_zone, name("test."));
    assert_eq!(found.addresses(), vec![SocketAddr::from(([127, 0, 0, 1], 53))]);
}
