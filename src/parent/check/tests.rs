use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};

use super::*;
use crate::xfr::wire::{MessageWriter, Section};
use crate::zone::RecordRef;
use crate::zone::dnssec::{ds_digest, key_tag};

fn zone() -> Name {
    Name::from_text("child.test.", None).expect("name")
}

fn dnskey(seed: u8) -> Vec<u8> {
    let mut rdata = vec![1, 1, 3, 13];
    rdata.extend((0..64).map(|i| seed.wrapping_add(i)));
    rdata
}

fn ds_of(dnskey: &[u8], digest_type: u8) -> Vec<u8> {
    let mut rdata = key_tag(dnskey).to_be_bytes().to_vec();
    rdata.extend([13, digest_type]);
    rdata.extend(ds_digest(zone().as_ref(), dnskey, digest_type).expect("digest"));
    rdata
}

fn pending(seed: u8, want: Want) -> PendingKey {
    let dnskey = dnskey(seed);
    PendingKey { id: i64::from(seed), tag: key_tag(&dnskey), dnskey, want }
}

fn answer(port: u16, set: &[Vec<u8>]) -> ServerAnswer {
    ServerAnswer { addr: ([127, 0, 0, 1], port).into(), answer: DsAnswer::Ds(set.to_vec()) }
}

fn unknown(port: u16) -> ServerAnswer {
    ServerAnswer { addr: ([127, 0, 0, 1], port).into(), answer: DsAnswer::Unknown("timed out".into()) }
}

#[test]
fn seen_only_when_every_agent_serves_it() {
    let key = pending(1, Want::Seen);
    let ds = ds_of(&key.dnskey, 2);
    let other = ds_of(&dnskey(9), 2);
    let all = [answer(1, &[other.clone(), ds.clone()]), answer(2, std::slice::from_ref(&ds))];
    assert_eq!(judge(&zone(), &key, &all, None), Verdict::Observed(Observation::DsSeen { key: 1 }));
    let one_behind = [answer(1, std::slice::from_ref(&ds)), answer(2, std::slice::from_ref(&other))];
    let Verdict::Waiting(why) = judge(&zone(), &key, &one_behind, None) else { panic!("one agent is behind") };
    assert!(why.contains("1 of 2 agents serve"), "{why}");
    let one_silent = [answer(1, std::slice::from_ref(&ds)), unknown(2)];
    let Verdict::Waiting(why) = judge(&zone(), &key, &one_silent, None) else { panic!("one agent is silent") };
    assert!(why.contains("1 did not answer usably"), "{why}");
    assert!(matches!(judge(&zone(), &key, &[], None), Verdict::Waiting(_)), "no agent: nothing is known");
}

#[test]
fn any_digest_type_the_parent_chose_counts() {
    let key = pending(1, Want::Seen);
    let sha384 = [answer(1, &[ds_of(&key.dnskey, 4)])];
    assert_eq!(judge(&zone(), &key, &sha384, None), Verdict::Observed(Observation::DsSeen { key: 1 }));
    let mut wrong = ds_of(&key.dnskey, 2);
    *wrong.last_mut().expect("digest") ^= 1;
    assert!(matches!(judge(&zone(), &key, &[answer(1, &[wrong])], None), Verdict::Waiting(_)));
}

#[test]
fn gone_only_when_no_agent_serves_it_and_a_silent_agent_is_not_a_no() {
    let key = pending(1, Want::Gone);
    let ds = ds_of(&key.dnskey, 2);
    let other = ds_of(&dnskey(9), 2);
    let gone = [answer(1, std::slice::from_ref(&other)), answer(2, &[])];
    assert_eq!(judge(&zone(), &key, &gone, None), Verdict::Observed(Observation::DsGone { key: 1 }));
    assert!(matches!(judge(&zone(), &key, &[answer(1, &[]), answer(2, &[ds])], None), Verdict::Waiting(_)));
    assert!(matches!(judge(&zone(), &key, &[answer(1, &[]), unknown(2)], None), Verdict::Waiting(_)));
}

#[test]
fn the_validator_must_agree_too() {
    let key = pending(1, Want::Seen);
    let ds = ds_of(&key.dnskey, 2);
    let agents = [answer(1, std::slice::from_ref(&ds))];
    let stale = answer(53, &[]);
    let Verdict::Waiting(why) = judge(&zone(), &key, &agents, Some(&stale)) else { panic!("validator disagrees") };
    assert!(why.contains("validating resolver"), "{why}");
    assert!(matches!(judge(&zone(), &key, &agents, Some(&unknown(53))), Verdict::Waiting(_)));
    let fresh = answer(53, &[ds]);
    assert_eq!(judge(&zone(), &key, &agents, Some(&fresh)), Verdict::Observed(Observation::DsSeen { key: 1 }));
}

/// The cut at `child.test.`, its parent not configured.
fn cut() -> Cut {
    Cut { child: zone(), parent: None }
}

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

/// SOA RDATA (`ns.ZONE h.ZONE 1 60 60 600 60`) for `zone`.
fn soa_rdata(zone: &str) -> Vec<u8> {
    let mut rdata = name(&format!("ns.{zone}")).wire().to_vec();
    rdata.extend(name(&format!("h.{zone}")).wire());
    for value in [1u32, 60, 60, 600, 60] {
        rdata.extend(value.to_be_bytes());
    }
    rdata
}

/// An authority record: `(owner, type, RDATA)`.
type Authority = (Name, Rtype, Vec<u8>);

/// The SOA of `zone` for the authority section.
fn soa(zone: &str) -> Authority {
    (name(zone), Rtype::SOA, soa_rdata(zone))
}

/// An NS of `zone` for the authority section.
fn ns(zone: &str) -> Authority {
    (name(zone), Rtype::NS, name(&format!("ns.{zone}")).wire().to_vec())
}

/// A response to `QNAME DS` with `ds` in the answer section and
/// `authority` in the authority section.
fn answer_with(
    aa: bool,
    ad: bool,
    rcode: ResponseCode,
    qname: &str,
    ds: &[Vec<u8>],
    authority: &[Authority],
) -> Vec<u8> {
    let mut metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
    metadata.authoritative = aa;
    metadata.authentic_data = ad;
    metadata.response_code = rcode;
    let qname = name(qname);
    let question = Question { name: qname.clone(), qtype: Rtype::DS, qclass: CLASS_IN };
    let mut writer = MessageWriter::new(metadata, Some(&question), 4096);
    for rdata in ds {
        writer.push(Section::Answer, RecordRef { owner: qname.as_ref(), rtype: Rtype::DS, ttl: 60, rdata }, CLASS_IN);
    }
    for (owner, rtype, rdata) in authority {
        let record = RecordRef { owner: owner.as_ref(), rtype: *rtype, ttl: 60, rdata };
        writer.push(Section::Authority, record, CLASS_IN);
    }
    writer.finish()
}

/// A response to `QNAME DS` with `ds` in the answer section and the
/// parent's SOA in the authority section when it has no DS.
fn response(aa: bool, ad: bool, rcode: ResponseCode, qname: &str, ds: &[Vec<u8>]) -> Vec<u8> {
    let authority = if ds.is_empty() { vec![soa("test.")] } else { vec![] };
    answer_with(aa, ad, rcode, qname, ds, &authority)
}

#[test]
fn only_authoritative_or_validated_answers_count() {
    let ds = ds_of(&dnskey(1), 2);
    let ok = response(true, false, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert_eq!(ds_set(&ok, &cut(), Asking::Agent), Ok(vec![ds.clone()]));
    let referral = response(false, false, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert!(ds_set(&referral, &cut(), Asking::Agent).expect_err("refused").contains("AA clear"));
    assert!(ds_set(&referral, &cut(), Asking::Validator).expect_err("refused").contains("AD clear"));
    let validated = response(false, true, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert_eq!(ds_set(&validated, &cut(), Asking::Validator), Ok(vec![ds.clone()]));
    let nxdomain = response(true, false, ResponseCode::NXDomain, "child.test.", &[]);
    assert_eq!(ds_set(&nxdomain, &cut(), Asking::Agent), Ok(vec![]));
    let refused = response(true, false, ResponseCode::Refused, "child.test.", &[]);
    assert!(ds_set(&refused, &cut(), Asking::Agent).expect_err("refused").contains("answered REFUSED"));
    let elsewhere = response(true, false, ResponseCode::NoError, "other.test.", &[ds]);
    assert!(ds_set(&elsewhere, &cut(), Asking::Agent).expect_err("refused").contains("another question"));
    assert!(ds_set(&[0u8; 5], &cut(), Asking::Agent).is_err(), "a truncated message is an error, not a panic");
}

#[test]
fn a_nodata_with_the_childs_soa_is_the_childs_not_no_ds() {
    // What a server of child.test. alone (NSD, Knot, BIND) says to
    // `child.test. DS`: AA, NODATA, the child's SOA.
    let child = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[soa("child.test.")]);
    let why = ds_set(&child, &cut(), Asking::Agent).expect_err("the child's answer is unknown");
    assert!(why.contains("child's side") && why.contains("SOA of child.test."), "{why}");
    // The same from a validating resolver.
    let child = answer_with(false, true, ResponseCode::NoError, "child.test.", &[], &[soa("child.test.")]);
    assert!(ds_set(&child, &cut(), Asking::Validator).is_err());
    // The parent's NODATA is "no DS".
    let parent = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[soa("test.")]);
    assert_eq!(ds_set(&parent, &cut(), Asking::Agent), Ok(vec![]));
    // No SOA at all, or that of a zone not above the child: unknown.
    let bare = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[]);
    assert!(ds_set(&bare, &cut(), Asking::Agent).expect_err("no SOA").contains("without the SOA of a zone above"));
    let bare = answer_with(true, false, ResponseCode::NXDomain, "child.test.", &[], &[]);
    assert!(ds_set(&bare, &cut(), Asking::Agent).is_err(), "an NXDOMAIN without the parent's SOA");
    for elsewhere in ["other.", "sub.child.test.", "est."] {
        let answer = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[soa(elsewhere)]);
        assert!(ds_set(&answer, &cut(), Asking::Agent).is_err(), "SOA of {elsewhere}");
    }
    // The child's SOA beside the parent's: the child's all the same.
    let both = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[soa("test."), soa("child.test.")]);
    assert!(ds_set(&both, &cut(), Asking::Agent).is_err());
}

#[test]
fn the_parent_is_any_zone_above_unless_one_is_known() {
    let deep = Cut { child: name("a.b.test."), parent: None };
    let from_test = |cut: &Cut| {
        let answer = answer_with(true, false, ResponseCode::NoError, "a.b.test.", &[], &[soa("test.")]);
        ds_set(&answer, cut, Asking::Agent)
    };
    assert_eq!(from_test(&deep), Ok(vec![]), "a.b.test. may be delegated from test.");
    let known = Cut { child: name("a.b.test."), parent: Some(name("b.test.")) };
    let why = from_test(&known).expect_err("the parent is b.test.");
    assert!(why.contains("the parent zone b.test."), "{why}");
    let answer = answer_with(true, false, ResponseCode::NoError, "a.b.test.", &[], &[soa("B.test.")]);
    assert_eq!(ds_set(&answer, &known, Asking::Agent), Ok(vec![]), "names compare without case");
}

#[test]
fn a_ds_answer_naming_the_child_as_its_zone_is_the_childs() {
    let ds = ds_of(&dnskey(1), 2);
    let one = std::slice::from_ref(&ds);
    let with_child_soa = answer_with(true, false, ResponseCode::NoError, "child.test.", one, &[soa("child.test.")]);
    assert!(ds_set(&with_child_soa, &cut(), Asking::Agent).expect_err("child's").contains("child's side"));
    let with_child_ns = answer_with(true, false, ResponseCode::NoError, "child.test.", one, &[ns("child.test.")]);
    let why = ds_set(&with_child_ns, &cut(), Asking::Agent).expect_err("child's");
    assert!(why.contains("NS of child.test."), "{why}");
    // The parent's NS in the authority section, as NSD sends it: the parent's.
    let with_parent_ns = answer_with(true, false, ResponseCode::NoError, "child.test.", one, &[ns("test.")]);
    assert_eq!(ds_set(&with_parent_ns, &cut(), Asking::Agent), Ok(vec![ds.clone()]));
}

#[test]
fn a_truncated_answer_is_unknown() {
    let ds = ds_of(&dnskey(1), 2);
    let mut answer = response(true, false, ResponseCode::NoError, "child.test.", &[ds]);
    answer[2] |= 0x02; // TC
    assert!(ds_set(&answer, &cut(), Asking::Agent).expect_err("truncated").contains("truncated (TC set)"));
}

/// A server on 127.0.0.1 answering each DS query over UDP with TC set
/// and no records, and over TCP with `tcp` (its ID set to the query's)
/// and the TC bit `tcp_tc`.
async fn truncating_server(tcp: Vec<u8>, tcp_tc: bool) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let addr = listener.local_addr().expect("addr");
    let udp = tokio::net::UdpSocket::bind(addr).await.expect("bind udp on the same port");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, from)) = udp.recv_from(&mut buf).await {
            let mut truncated = answer_with(true, false, ResponseCode::NoError, "child.test.", &[], &[]);
            truncated[..2].copy_from_slice(&buf[..2.min(len)]);
            truncated[2] |= 0x02;
            let _ = udp.send_to(&truncated, from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).await.is_err() {
                continue;
            }
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stream.read_exact(&mut query).await.is_err() {
                continue;
            }
            let mut answer = tcp.clone();
            answer[..2].copy_from_slice(&query[..2]);
            if tcp_tc {
                answer[2] |= 0x02;
            }
            let mut framed = u16::try_from(answer.len()).expect("short").to_be_bytes().to_vec();
            framed.extend(&answer);
            let _ = stream.write_all(&framed).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_truncated_udp_answer_is_asked_again_over_tcp_and_a_truncated_tcp_one_is_unknown() {
    let ds = ds_of(&dnskey(1), 2);
    let full = response(true, false, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    let server = Server { addr: truncating_server(full.clone(), false).await, key: None, source: None };
    let answer = ask(&server, &cut(), Asking::Agent).await;
    assert_eq!(answer.answer, DsAnswer::Ds(vec![ds]), "the TCP answer, not the truncated UDP one");
    let server = Server { addr: truncating_server(full, true).await, key: None, source: None };
    let answer = ask(&server, &cut(), Asking::Agent).await;
    let DsAnswer::Unknown(why) = &answer.answer else { panic!("truncated over TCP: {answer}") };
    assert!(why.contains("truncated answer (TC set) over TCP"), "{why}");
}
