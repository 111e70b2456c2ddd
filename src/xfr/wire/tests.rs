use hickory_proto::op::{Message, MessageType, OpCode};

use super::*;
use crate::zone::read_zone_str;

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

fn response_metadata() -> Metadata {
    let mut metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
    metadata.authoritative = true;
    metadata
}

const ZONE: &str = "$ORIGIN Example.\n$TTL 300\n\
@ SOA ns1 hostmaster 5 3600 900 604800 300\n\
@ NS ns1\n@ MX 10 mail.example.\nns1 A 192.0.2.1\nwww.sub TXT \"hello\"\n\
alias CNAME www.sub.example.\n";

#[test]
fn records_written_read_back_and_hickory_agrees() {
    let zone = read_zone_str(ZONE, &name("example."), std::path::Path::new("test")).expect("zone");
    let question = Question { name: name("Example."), qtype: Rtype::AXFR, qclass: CLASS_IN };
    let mut writer = MessageWriter::new(response_metadata(), Some(&question), MAX_MESSAGE);
    for record in zone.records() {
        assert!(writer.push(Section::Answer, record, CLASS_IN));
    }
    assert!(writer.push_edns(UDP_EDNS, false));
    let bytes = writer.finish();
    let parsed = ParsedMessage::parse(&bytes).expect("parse");
    assert_eq!(parsed.question.as_ref(), Some(&question));
    let read: Vec<_> = parsed.answers().collect::<Result<_, _>>().expect("records");
    assert_eq!(read.len(), zone.len());
    for (wire, record) in read.iter().zip(zone.records()) {
        assert!(wire.owner.as_ref().eq_ignore_case(record.owner), "{:?} {:?}", wire.owner, record.owner);
        assert_eq!((wire.rtype, wire.ttl, &wire.rdata[..]), (record.rtype, record.ttl, record.rdata));
    }
    // An independent reader takes the message as well.
    let message = Message::from_vec(&bytes).expect("hickory reads it");
    assert_eq!(message.answers.len(), zone.len());
    assert!(message.edns.is_some());
    assert!(message.authoritative);
}

#[test]
fn owners_below_the_question_point_to_it() {
    let zone = read_zone_str(ZONE, &name("example."), std::path::Path::new("test")).expect("zone");
    let question = Question { name: name("Example."), qtype: Rtype::AXFR, qclass: CLASS_IN };
    let mut writer = MessageWriter::new(response_metadata(), Some(&question), MAX_MESSAGE);
    let www = zone.records().find(|r| r.rtype == Rtype::TXT).expect("txt");
    assert!(writer.push(Section::Answer, www, CLASS_IN));
    let bytes = writer.finish();
    let owner_at = 12 + question.name.wire().len() + 4;
    assert_eq!(&bytes[owner_at..owner_at + 10], b"\x03www\x03sub\xC0\x0C");
    // "other." is not below the apex: written in full.
    let mut writer = MessageWriter::new(response_metadata(), Some(&question), MAX_MESSAGE);
    let owner = name("other.");
    let other = RecordRef { owner: owner.as_ref(), rtype: Rtype::A, ttl: 1, rdata: &[192, 0, 2, 1] };
    assert!(writer.push(Section::Answer, other, CLASS_IN));
    let bytes = writer.finish();
    assert_eq!(&bytes[owner_at..owner_at + 7], b"\x05other\x00");
}

#[test]
fn compressed_rdata_names_are_expanded() {
    // A hickory-proto message compresses NS and MX targets and SOA names.
    let mut message = Message::new(1, MessageType::Response, OpCode::Query);
    let text = "$ORIGIN example.\n@ 300 SOA ns1 hostmaster 5 3600 900 604800 300\n@ 300 NS ns1\n@ 300 MX 10 ns1\n";
    let zone = read_zone_str(text, &name("example."), std::path::Path::new("test")).expect("zone");
    for record in zone.records() {
        let mut decoder = BinDecoder::new(record.owner.wire());
        let owner = hickory_proto::rr::Name::read(&mut decoder).expect("owner");
        let mut decoder = BinDecoder::new(record.rdata);
        let rdata = hickory_proto::rr::RData::read(
            &mut decoder,
            RecordType::from(record.rtype.0),
            hickory_proto::serialize::binary::Restrict::new(record.rdata.len() as u16),
        )
        .expect("rdata");
        message.add_answer(hickory_proto::rr::Record::from_rdata(owner, record.ttl, rdata));
    }
    let bytes = message.to_vec().expect("encode");
    assert!(bytes.len() < 12 + zone.records().map(|r| r.owner.wire().len() + 10 + r.rdata.len()).sum::<usize>());
    let parsed = ParsedMessage::parse(&bytes).expect("parse");
    let read: Vec<_> = parsed.answers().collect::<Result<_, _>>().expect("records");
    let mut expected: Vec<_> = zone.records().map(|r| (r.rtype, r.rdata.to_vec())).collect();
    let mut got: Vec<_> = read.iter().map(|r| (r.rtype, r.rdata.to_vec())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}

#[test]
fn pointer_loops_and_forward_pointers_are_refused() {
    let mut message = vec![0u8; 12];
    message[5] = 1; // one question
    message.extend_from_slice(&[0xC0, 12]); // points to itself
    message.extend_from_slice(&[0, 6, 0, 1]);
    assert!(ParsedMessage::parse(&message).is_err());
    message[12..14].copy_from_slice(&[0xC0, 20]); // forward
    assert!(ParsedMessage::parse(&message).is_err());
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let zone = read_zone_str(ZONE, &name("example."), std::path::Path::new("test")).expect("zone");
    let question = Question { name: name("example."), qtype: Rtype::AXFR, qclass: CLASS_IN };
    let mut writer = MessageWriter::new(response_metadata(), Some(&question), MAX_MESSAGE);
    for record in zone.records() {
        writer.push(Section::Answer, record, CLASS_IN);
    }
    let bytes = writer.finish();
    for cut in 0..bytes.len() {
        if let Ok(parsed) = ParsedMessage::parse(&bytes[..cut]) {
            assert!(parsed.records().any(|r| r.is_err()), "a cut at {cut} reads as whole");
        }
    }
}

#[test]
fn the_size_limit_holds() {
    let zone = read_zone_str(ZONE, &name("example."), std::path::Path::new("test")).expect("zone");
    let mut writer = MessageWriter::new(response_metadata(), None, 60);
    let pushed = zone.records().take_while(|r| writer.push(Section::Answer, *r, CLASS_IN)).count();
    assert!(pushed < zone.len());
    assert!(writer.finish().len() <= 60);
}

#[test]
fn a_transfer_compresses_owners_in_every_message_and_reads_back_exactly() {
    use crate::xfr::outgoing::AnswerStream;
    let mut text = String::from("$ORIGIN tld.\n$TTL 300\n@ SOA ns1 hostmaster 5 3600 900 604800 300\n@ NS ns1\n");
    for i in 0..3000 {
        text.push_str(&format!("dom{i} NS ns1.host{i}.example.\ndom{i} NS ns2.host{i}.example.\n"));
        if i % 7 == 0 {
            text.push_str(&format!("dom{i} DS 4711 13 2 {}\nDeep.dom{i} A 192.0.2.{}\n", "AB".repeat(32), i % 250));
        }
    }
    let zone = read_zone_str(&text, &name("tld."), std::path::Path::new("test")).expect("zone");
    let question = Question { name: name("tld."), qtype: Rtype::AXFR, qclass: CLASS_IN };
    let mut stream = AnswerStream::new(response_metadata(), &question, 0);
    let mut messages = Vec::new();
    for record in zone.records() {
        messages.extend(stream.push(record, CLASS_IN).expect("fits"));
    }
    messages.push(stream.finish());
    assert!(messages.len() > 3, "{} messages", messages.len());
    let mut read = Vec::new();
    for (i, bytes) in messages.iter().enumerate() {
        assert!(bytes.len() <= 16 * 1024 + 512, "message {i}: {} bytes", bytes.len());
        let parsed = ParsedMessage::parse(bytes).expect("parse");
        assert_eq!(parsed.question.is_some(), i == 0, "the question in the first message only");
        read.extend(parsed.answers().collect::<Result<Vec<_>, _>>().expect("records"));
        assert_eq!(Message::from_vec(bytes).expect("hickory reads it").answers.len(), parsed.answers().count());
    }
    assert_eq!(read.len(), zone.len());
    for (wire, record) in read.iter().zip(zone.records()) {
        assert_eq!(wire.owner.wire(), record.owner.wire(), "owners come back byte for byte");
        assert_eq!((wire.rtype, wire.ttl, &wire.rdata[..]), (record.rtype, record.ttl, record.rdata));
    }
    // A repeated owner costs a pointer, any other one its labels above the apex.
    let total: usize = messages.iter().map(Vec::len).sum();
    let spelled: usize = zone.records().map(|r| r.owner.wire().len() + 10 + r.rdata.len()).sum();
    assert!(total * 100 < spelled * 90, "{total} bytes against {spelled} spelled out");
}

#[test]
fn a_record_too_large_to_share_a_message_goes_alone() {
    use crate::xfr::outgoing::AnswerStream;
    let question = Question { name: name("tld."), qtype: Rtype::AXFR, qclass: CLASS_IN };
    let mut stream = AnswerStream::new(response_metadata(), &question, 0);
    let (small, large) = (name("a.tld."), name("b.tld."));
    let txt = vec![0x7f; 30_000];
    let a = RecordRef { owner: small.as_ref(), rtype: Rtype::A, ttl: 1, rdata: &[192, 0, 2, 1] };
    let b = RecordRef { owner: large.as_ref(), rtype: Rtype::NULL, ttl: 1, rdata: &txt };
    assert!(stream.push(a, CLASS_IN).expect("fits").is_none());
    let first = stream.push(b, CLASS_IN).expect("alone in a message of its own").expect("the first is done");
    assert_eq!(ParsedMessage::parse(&first).expect("parse").answers().count(), 1);
    let second = stream.push(a, CLASS_IN).expect("fits").expect("the large one is done");
    assert!(second.len() > 30_000);
    let read: Vec<_> = ParsedMessage::parse(&second).expect("parse").answers().collect::<Result<_, _>>().expect("rr");
    assert_eq!((read.len(), read[0].rdata.len()), (1, 30_000));
}

#[test]
fn a_record_that_does_not_fit_leaves_nothing_to_point_to() {
    // A later message of a transfer: the first owner below the apex would
    // spell the apex out. It does not fit; the next record must not point
    // into the bytes taken back.
    let apex = name("tld.");
    let (long, short) = (name("long-name.tld."), name("a.tld."));
    let big = vec![0; 300];
    let first = RecordRef { owner: long.as_ref(), rtype: Rtype::NULL, ttl: 1, rdata: &big };
    let small = vec![0; 150];
    let second = RecordRef { owner: long.as_ref(), rtype: Rtype::NULL, ttl: 1, rdata: &small };
    let third = RecordRef { owner: short.as_ref(), rtype: Rtype::A, ttl: 1, rdata: &[192, 0, 2, 1] };
    let mut writer = MessageWriter::continuing(response_metadata(), Some(apex.as_ref()), 200).filled_to(100);
    assert!(writer.push(Section::Answer, third, CLASS_IN));
    assert!(!writer.push(Section::Answer, second, CLASS_IN), "past the fill with a record already in");
    assert!(writer.push(Section::Answer, third, CLASS_IN));
    let bytes = writer.finish();
    let read: Vec<_> = ParsedMessage::parse(&bytes).expect("parse").answers().collect::<Result<_, _>>().expect("rr");
    assert_eq!(read.len(), 2);
    assert!(read.iter().all(|r| r.owner.wire() == short.wire()));
    let mut fresh = MessageWriter::continuing(response_metadata(), Some(apex.as_ref()), 100);
    assert!(!fresh.push(Section::Answer, first, CLASS_IN), "past the limit even alone");
    assert!(fresh.push(Section::Answer, third, CLASS_IN));
    assert!(fresh.push(Section::Answer, third, CLASS_IN));
    let bytes = fresh.finish();
    let read: Vec<_> = ParsedMessage::parse(&bytes).expect("parse").answers().collect::<Result<_, _>>().expect("rr");
    assert!(read.len() == 2 && read.iter().all(|r| r.owner.wire() == short.wire()));
}
