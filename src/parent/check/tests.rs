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

/// A response to `child.test. DS` with `ds` in the answer section.
fn response(aa: bool, ad: bool, rcode: ResponseCode, qname: &str, ds: &[Vec<u8>]) -> Vec<u8> {
    let mut metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
    metadata.authoritative = aa;
    metadata.authentic_data = ad;
    metadata.response_code = rcode;
    let qname = Name::from_text(qname, None).expect("name");
    let question = Question { name: qname.clone(), qtype: Rtype::DS, qclass: CLASS_IN };
    let mut writer = MessageWriter::new(metadata, Some(&question), 4096);
    for rdata in ds {
        writer.push(Section::Answer, RecordRef { owner: qname.as_ref(), rtype: Rtype::DS, ttl: 60, rdata }, CLASS_IN);
    }
    writer.finish()
}

#[test]
fn only_authoritative_or_validated_answers_count() {
    let ds = ds_of(&dnskey(1), 2);
    let ok = response(true, false, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert_eq!(ds_set(&ok, &zone(), Asking::Agent), Ok(vec![ds.clone()]));
    let referral = response(false, false, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert!(ds_set(&referral, &zone(), Asking::Agent).expect_err("refused").contains("AA clear"));
    assert!(ds_set(&referral, &zone(), Asking::Validator).expect_err("refused").contains("AD clear"));
    let validated = response(false, true, ResponseCode::NoError, "child.test.", std::slice::from_ref(&ds));
    assert_eq!(ds_set(&validated, &zone(), Asking::Validator), Ok(vec![ds.clone()]));
    let nxdomain = response(true, false, ResponseCode::NXDomain, "child.test.", &[]);
    assert_eq!(ds_set(&nxdomain, &zone(), Asking::Agent), Ok(vec![]));
    let refused = response(true, false, ResponseCode::Refused, "child.test.", &[]);
    assert!(ds_set(&refused, &zone(), Asking::Agent).expect_err("refused").contains("answered REFUSED"));
    let elsewhere = response(true, false, ResponseCode::NoError, "other.test.", &[ds]);
    assert!(ds_set(&elsewhere, &zone(), Asking::Agent).expect_err("refused").contains("another question"));
    assert!(ds_set(&[0u8; 5], &zone(), Asking::Agent).is_err(), "a truncated message is an error, not a panic");
}
