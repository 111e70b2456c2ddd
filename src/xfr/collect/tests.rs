use hickory_proto::op::{MessageType, Metadata, OpCode};

use super::*;
use crate::xfr::apply::{apply, build, into_zone, net_change};
use crate::xfr::outgoing::apex_soa;
use crate::xfr::wire::{MAX_MESSAGE, MessageWriter, Question, Section};
use crate::zone::{RecordRef, read_zone_str};

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

/// One record from its text (read beside an SOA, which a zone needs).
fn record(text: &str) -> TransferRecord {
    let filler = if text.contains(" SOA ") { "" } else { "@ 300 SOA ns hostmaster 999 1 1 1 1\n" };
    let zone_text = format!("$ORIGIN example.\n{filler}{text}\n");
    let zone = read_zone_str(&zone_text, &name("example."), std::path::Path::new("t")).expect("record");
    let is_filler = |r: &crate::zone::RecordRef<'_>| !filler.is_empty() && r.rtype == Rtype::SOA;
    let r = zone.records().find(|r| !is_filler(r)).expect("the record");
    TransferRecord { owner: r.owner.to_owned(), rtype: r.rtype, ttl: r.ttl, rdata: r.rdata.to_vec() }
}

fn soa(serial: u32) -> TransferRecord {
    record(&format!("@ 300 SOA ns hostmaster {serial} 3600 900 604800 300"))
}

const NO_LIMITS: AnswerLimits = AnswerLimits { max_records: u64::MAX, max_bytes: u64::MAX };

fn asked(ixfr: bool, ours: Option<u32>) -> Asked {
    if ixfr { Asked::Ixfr(ours) } else { Asked::Axfr }
}

fn collect(ixfr: bool, ours: Option<u32>, records: Vec<TransferRecord>) -> Result<Collector, String> {
    let mut collector = Collector::new(name("example."), asked(ixfr, ours), NO_LIMITS);
    for r in records {
        collector.take(r).map_err(|e| e.to_string())?;
    }
    Ok(collector)
}

fn copy_at_serial_1(body: &str) -> crate::zone::Zone {
    let text = format!("$ORIGIN example.\n@ 300 SOA ns hostmaster 1 3600 900 604800 300\n{body}");
    read_zone_str(&text, &name("example."), std::path::Path::new("copy")).expect("copy")
}

#[test]
fn an_axfr_ends_at_its_second_soa() {
    let records = vec![soa(3), record("@ 300 NS ns"), record("ns 300 A 192.0.2.1"), soa(3)];
    let collector = collect(false, None, records).expect("collect");
    assert!(collector.done());
    let received = collector.finish().expect("finish");
    assert_eq!(received.serial, 3);
    assert!(matches!(&received.body, Body::Whole(r) if r.len() == 3), "{:?}", received.body);
    let zone = into_zone(received, &name("example."), None).expect("zone");
    assert_eq!(zone.len(), 3);
}

#[test]
fn an_ixfr_is_cut_into_steps() {
    let records = vec![
        soa(3),
        soa(1),
        record("a 300 A 192.0.2.1"),
        soa(2),
        record("b 300 A 192.0.2.2"),
        soa(2),
        record("b 300 A 192.0.2.2"),
        soa(3),
        record("c 300 A 192.0.2.3"),
        soa(3),
    ];
    let collector = collect(true, Some(1), records).expect("collect");
    assert!(collector.done());
    let received = collector.finish().expect("finish");
    let Body::Steps(steps) = &received.body else { panic!("incremental expected: {:?}", received.body) };
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].0.len(), steps[0].1.len()), (2, 2), "old SOA + a; new SOA + b");
    let copy = copy_at_serial_1("@ 300 NS ns\na 300 A 192.0.2.1\n");
    let zone = into_zone(received, &name("example."), Some(&copy)).expect("applied");
    let text: Vec<String> = zone.records().map(|r| format!("{} {}", r.owner, r.rtype)).collect();
    assert_eq!(text, ["example. NS", "example. SOA", "c.example. A"]);
    let serial = apex_soa(&zone).and_then(|s| crate::xfr::wire::soa_serial(s.rdata));
    assert_eq!(serial, Some(3));
}

#[test]
fn an_ixfr_answered_in_full_is_a_whole_zone() {
    let records = vec![soa(3), record("@ 300 NS ns"), soa(3)];
    let received = collect(true, Some(1), records).expect("collect").finish().expect("finish");
    assert!(matches!(received.body, Body::Whole(_)));
}

#[test]
fn an_ixfr_with_our_serial_alone_is_up_to_date() {
    let collector = collect(true, Some(7), vec![soa(7)]).expect("collect");
    assert!(collector.done());
    assert!(matches!(collector.finish().expect("finish").body, Body::Steps(steps) if steps.is_empty()));
}

#[test]
fn what_is_not_a_transfer_is_refused() {
    assert!(collect(false, None, vec![record("@ 300 NS ns")]).is_err(), "must start with the SOA");
    let after = vec![soa(2), record("@ 300 NS ns"), soa(2), record("x 300 A 192.0.2.9")];
    assert!(collect(false, None, after).is_err(), "records after the closing SOA");
    let unfinished = collect(false, None, vec![soa(2), record("@ 300 NS ns")]).expect("collect");
    assert!(!unfinished.done(), "no closing SOA: not complete");
}

#[test]
fn a_deletion_the_copy_lacks_refuses_the_ixfr() {
    let copy = copy_at_serial_1("");
    let error = apply(&name("example."), &copy, &[soa(1), record("gone 300 A 192.0.2.1")], &[soa(2)]).err();
    assert!(error.is_some_and(|e| e.to_string().contains("gone.example.")));
}

#[test]
fn records_outside_the_zone_or_malformed_are_refused() {
    let mut outside = record("a 300 A 192.0.2.1");
    outside.owner = name("a.other.");
    assert!(build(&name("example."), [soa(1), outside].iter()).is_err());
    let mut short = record("a 300 A 192.0.2.1");
    short.rdata.pop();
    assert!(build(&name("example."), [soa(1), short].iter()).is_err());
}

#[test]
fn ixfr_steps_make_one_net_change() {
    let a = || record("a 300 A 192.0.2.1");
    let b = || record("b 300 A 192.0.2.2");
    // Step 1 adds b, step 2 deletes it and deletes a: only a is deleted.
    let steps = vec![(vec![soa(1)], vec![soa(2), b()]), (vec![soa(2), b(), a()], vec![soa(3)])];
    let (deleted, added) = net_change(steps).expect("net change");
    let names =
        |records: &[TransferRecord]| records.iter().map(|r| format!("{} {}", r.owner, r.rtype)).collect::<Vec<_>>();
    assert_eq!(names(&deleted), ["example. SOA", "a.example. A"]);
    assert_eq!(names(&added), ["example. SOA"]);
    assert_eq!(added[0].serial(), Some(3));
    // Deleted twice without being added between: refused.
    let twice = vec![(vec![soa(1), a()], vec![soa(2)]), (vec![soa(2), a()], vec![soa(3)])];
    assert!(net_change(twice).is_err());
}

/// The whole answer of a transfer through the collector: the error of
/// the record that is refused, or of `finish`.
fn refusal(ixfr: bool, ours: Option<u32>, records: Vec<TransferRecord>) -> String {
    match collect(ixfr, ours, records) {
        Err(e) => e,
        Ok(collector) if !collector.done() => "not complete".to_owned(),
        Ok(collector) => collector.finish().err().map_or_else(|| "taken".to_owned(), |e| e.to_string()),
    }
}

#[test]
fn an_axfr_with_a_second_soa_is_refused() {
    // A second SOA of another serial among the records: two SOAs would
    // reach the copy.
    let records = vec![soa(5), record("@ 300 NS ns"), soa(4), record("ns 300 A 192.0.2.1"), soa(5)];
    let error = refusal(false, None, records);
    assert!(error.contains("a second SOA (serial 4)"), "{error}");
    // The same in an IXFR answered in full.
    let records = vec![soa(5), record("@ 300 NS ns"), soa(4), soa(5)];
    assert!(refusal(true, Some(1), records).contains("a second SOA"));
}

#[test]
fn an_soa_under_another_owner_is_refused() {
    let mut closing = soa(5);
    closing.owner = name("sub.example.");
    let error = refusal(false, None, vec![soa(5), record("@ 300 NS ns"), closing.clone()]);
    assert!(error.contains("an SOA record for sub.example."), "{error}");
    let error = refusal(false, None, vec![closing, record("@ 300 NS ns"), soa(5)]);
    assert!(error.contains("an SOA record for sub.example."), "{error}");
}

#[test]
fn an_ixfr_short_of_its_announced_serial_is_refused() {
    // Announced 1030, the steps go from 1020 to 1021 only.
    let records = vec![soa(1030), soa(1020), record("a 300 A 192.0.2.1"), soa(1021), soa(1030)];
    let error = refusal(true, Some(1020), records);
    assert!(error.contains("end at serial 1021, not at the serial 1030"), "{error}");
    // A step that does not start where the copy is.
    let records = vec![soa(1030), soa(1010), soa(1030), soa(1030)];
    let error = refusal(true, Some(1020), records);
    assert!(error.contains("from serial 1010 where serial 1020"), "{error}");
    // Steps that do not follow each other.
    let records = vec![soa(1030), soa(1020), soa(1021), soa(1025), soa(1030), soa(1030)];
    let error = refusal(true, Some(1020), records);
    assert!(error.contains("from serial 1025 where serial 1021"), "{error}");
    // A whole chain is taken.
    let records = vec![soa(1030), soa(1020), soa(1021), soa(1021), soa(1030), soa(1030)];
    assert_eq!(refusal(true, Some(1020), records), "taken");
}

// The collector fed DNS messages as bytes, as a primary sends them.

/// The messages of an answer: `records` cut into messages of `per`
/// records, as the answer to `qtype` for example.
fn messages(qtype: Rtype, records: &[TransferRecord], per: usize, class: u16) -> Vec<Vec<u8>> {
    let question = Question { name: name("example."), qtype, qclass: CLASS_IN };
    records
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
            let mut writer = MessageWriter::new(metadata, (i == 0).then_some(&question), MAX_MESSAGE);
            for r in chunk {
                let record = RecordRef { owner: r.owner.as_ref(), rtype: r.rtype, ttl: r.ttl, rdata: &r.rdata };
                assert!(writer.push(Section::Answer, record, class), "fits");
            }
            writer.finish()
        })
        .collect()
}

/// Feeds `messages` until the collector is done or refuses one.
fn feed(asked: Asked, limits: AnswerLimits, messages: &[Vec<u8>]) -> Result<Collector, CollectError> {
    let mut collector = Collector::new(name("example."), asked, limits);
    for message in messages {
        collector.feed(message)?;
    }
    Ok(collector)
}

fn axfr_of_serial_3() -> Vec<TransferRecord> {
    vec![soa(3), record("@ 300 NS ns"), record("ns 300 A 192.0.2.1"), record("www 300 A 192.0.2.80"), soa(3)]
}

#[test]
fn a_whole_axfr_in_messages_makes_the_zone() {
    let wire = messages(Rtype::AXFR, &axfr_of_serial_3(), 2, CLASS_IN);
    assert_eq!(wire.len(), 3);
    let collector = feed(Asked::Axfr, NO_LIMITS, &wire).expect("collect");
    assert!(collector.done());
    let received = collector.finish().expect("finish");
    assert_eq!((received.kind(), received.serial, received.records), ("axfr", 3, 5));
    assert_eq!(received.bytes, wire.iter().map(|m| m.len() as u64).sum::<u64>());
    let zone = into_zone(received, &name("example."), None).expect("zone");
    let text: Vec<String> = zone.records().map(|r| format!("{} {}", r.owner, r.rtype)).collect();
    assert_eq!(text, ["example. NS", "example. SOA", "ns.example. A", "www.example. A"]);
}

#[test]
fn an_ixfr_of_two_deltas_in_messages_applies_to_the_copy() {
    let records = vec![
        soa(3),
        soa(1),
        record("a 300 A 192.0.2.1"),
        soa(2),
        record("b 300 A 192.0.2.2"),
        soa(2),
        soa(3),
        record("c 300 A 192.0.2.3"),
        soa(3),
    ];
    let wire = messages(Rtype::IXFR, &records, 4, CLASS_IN);
    let received = feed(Asked::Ixfr(Some(1)), NO_LIMITS, &wire).expect("collect").finish().expect("finish");
    assert_eq!(received.kind(), "ixfr");
    assert!(matches!(&received.body, Body::Steps(steps) if steps.len() == 2));
    let copy = copy_at_serial_1("@ 300 NS ns\na 300 A 192.0.2.1\n");
    let zone = into_zone(received, &name("example."), Some(&copy)).expect("applied");
    let text: Vec<String> = zone.records().map(|r| format!("{} {}", r.owner, r.rtype)).collect();
    assert_eq!(text, ["example. NS", "example. SOA", "b.example. A", "c.example. A"]);
}

#[test]
fn an_ixfr_answered_as_an_axfr_replaces_the_copy() {
    let wire = messages(Rtype::IXFR, &axfr_of_serial_3(), 3, CLASS_IN);
    let received = feed(Asked::Ixfr(Some(1)), NO_LIMITS, &wire).expect("collect").finish().expect("finish");
    assert_eq!(received.kind(), "axfr");
    let copy = copy_at_serial_1("old 300 A 192.0.2.9\n");
    let zone = into_zone(received, &name("example."), Some(&copy)).expect("zone");
    assert!(zone.records().all(|r| !r.owner.to_string().starts_with("old.")), "the copy is replaced");
    assert_eq!(zone.len(), 4);
}

#[test]
fn a_cut_or_malformed_sequence_is_not_taken() {
    let wire = messages(Rtype::AXFR, &axfr_of_serial_3(), 2, CLASS_IN);
    // The last message never comes: not complete.
    let collector = feed(Asked::Axfr, NO_LIMITS, &wire[..2]).expect("collect");
    assert!(!collector.done(), "no closing SOA");
    // A message cut inside a record does not read.
    let mut cut = wire[1].clone();
    cut.truncate(cut.len() - 3);
    let error = feed(Asked::Axfr, NO_LIMITS, &[wire[0].clone(), cut]).err();
    assert!(matches!(error, Some(CollectError::Wire(_))), "{error:?}");
    // Records after the closing SOA, in a message of their own.
    let mut more = wire.clone();
    more.extend(messages(Rtype::AXFR, &[record("late 300 A 192.0.2.7")], 1, CLASS_IN));
    assert_eq!(feed(Asked::Axfr, NO_LIMITS, &more).err(), Some(CollectError::AfterClosingSoa));
    // A record of another class.
    let chaos = messages(Rtype::AXFR, &axfr_of_serial_3(), 5, 3);
    assert_eq!(feed(Asked::Axfr, NO_LIMITS, &chaos).err(), Some(CollectError::Class { class: 3 }));
    // No message at all.
    assert_eq!(feed(Asked::Axfr, NO_LIMITS, &[]).expect("collect").finish().err(), Some(CollectError::Empty));
}

#[test]
fn an_soa_that_does_not_match_is_refused() {
    // An IXFR whose step starts at another serial than the copy's.
    let records = vec![soa(3), soa(2), soa(3), soa(3)];
    let wire = messages(Rtype::IXFR, &records, 2, CLASS_IN);
    let error = feed(Asked::Ixfr(Some(1)), NO_LIMITS, &wire).expect("collect").finish().err();
    assert_eq!(error, Some(CollectError::StepGap { from: Some(2), expected: Some(1) }));
    // An AXFR closed by the SOA of another zone.
    let mut closing = soa(3);
    closing.owner = name("other.");
    let wire = messages(Rtype::AXFR, &[soa(3), record("@ 300 NS ns"), closing], 3, CLASS_IN);
    let error = feed(Asked::Axfr, NO_LIMITS, &wire).err();
    assert!(matches!(error, Some(CollectError::ForeignSoa { .. })), "{error:?}");
}

#[test]
fn the_record_and_byte_limits_refuse_the_answer() {
    let wire = messages(Rtype::AXFR, &axfr_of_serial_3(), 2, CLASS_IN);
    let records = AnswerLimits { max_records: 4, max_bytes: u64::MAX };
    let error = feed(Asked::Axfr, records, &wire).err();
    assert_eq!(error, Some(CollectError::TooManyRecords { max: 4 }));
    assert!(error.is_some_and(|e| e.is_limit()));
    let exactly = AnswerLimits { max_records: 5, max_bytes: wire.iter().map(|m| m.len() as u64).sum() };
    assert!(feed(Asked::Axfr, exactly, &wire).expect("within the limits").done());
    let bytes = AnswerLimits { max_records: u64::MAX, max_bytes: exactly.max_bytes - 1 };
    let error = feed(Asked::Axfr, bytes, &wire).err();
    assert_eq!(error, Some(CollectError::TooManyBytes { max: exactly.max_bytes - 1 }));
    assert!(error.is_some_and(|e| e.to_string().contains("transfer-max-bytes")));
}
