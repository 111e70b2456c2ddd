use super::*;
use crate::zone::read_zone_str;

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

/// One record from its text (read beside an SOA, which a zone needs).
fn record(text: &str) -> Owned {
    let filler = if text.contains(" SOA ") { "" } else { "@ 300 SOA ns hostmaster 999 1 1 1 1\n" };
    let zone_text = format!("$ORIGIN example.\n{filler}{text}\n");
    let zone = read_zone_str(&zone_text, &name("example."), std::path::Path::new("t")).expect("record");
    let is_filler = |r: &crate::zone::RecordRef<'_>| !filler.is_empty() && r.rtype == Rtype::SOA;
    let r = zone.records().find(|r| !is_filler(r)).expect("the record");
    Owned { owner: r.owner.to_owned(), rtype: r.rtype, ttl: r.ttl, rdata: r.rdata.to_vec() }
}

fn soa(serial: u32) -> Owned {
    record(&format!("@ 300 SOA ns hostmaster {serial} 3600 900 604800 300"))
}

fn collect(ixfr: bool, ours: Option<u32>, records: Vec<Owned>) -> Result<Collector, String> {
    let mut collector = Collector::new(name("example."), ixfr, ours);
    for r in records {
        collector.take(r)?;
    }
    Ok(collector)
}

#[test]
fn an_axfr_ends_at_its_second_soa() {
    let records = vec![soa(3), record("@ 300 NS ns"), record("ns 300 A 192.0.2.1"), soa(3)];
    let collector = collect(false, None, records).expect("collect");
    assert!(collector.done());
    let received = collector.finish(0).expect("finish");
    assert_eq!(received.serial, 3);
    assert!(matches!(&received.body, Body::Whole(r) if r.len() == 3), "{:?}", received.body);
    let zone = received.into_zone(&name("example."), None).expect("zone");
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
    let received = collector.finish(0).expect("finish");
    let Body::Steps(steps) = &received.body else { panic!("incremental expected: {:?}", received.body) };
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].0.len(), steps[0].1.len()), (2, 2), "old SOA + a; new SOA + b");
    let copy = read_zone_str(
        "$ORIGIN example.\n@ 300 SOA ns hostmaster 1 3600 900 604800 300\n@ 300 NS ns\na 300 A 192.0.2.1\n",
        &name("example."),
        std::path::Path::new("copy"),
    )
    .expect("copy");
    let zone = received.into_zone(&name("example."), Some(&copy)).expect("applied");
    let text: Vec<String> = zone.records().map(|r| format!("{} {}", r.owner, r.rtype)).collect();
    assert_eq!(text, ["example. NS", "example. SOA", "c.example. A"]);
    let serial = apex_soa(&zone).and_then(|s| super::super::wire::soa_serial(s.rdata));
    assert_eq!(serial, Some(3));
}

#[test]
fn an_ixfr_answered_in_full_is_a_whole_zone() {
    let records = vec![soa(3), record("@ 300 NS ns"), soa(3)];
    let received = collect(true, Some(1), records).expect("collect").finish(0).expect("finish");
    assert!(matches!(received.body, Body::Whole(_)));
}

#[test]
fn an_ixfr_with_our_serial_alone_is_up_to_date() {
    let collector = collect(true, Some(7), vec![soa(7)]).expect("collect");
    assert!(collector.done());
    assert!(matches!(collector.finish(0).expect("finish").body, Body::Steps(steps) if steps.is_empty()));
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
    let copy = read_zone_str(
        "$ORIGIN example.\n@ 300 SOA ns hostmaster 1 3600 900 604800 300\n",
        &name("example."),
        std::path::Path::new("copy"),
    )
    .expect("copy");
    let error = apply(&name("example."), &copy, &[soa(1), record("gone 300 A 192.0.2.1")], &[soa(2)]).err();
    assert!(error.is_some_and(|e| e.contains("gone.example.")));
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
fn the_timers_come_from_the_soa_with_a_floor() {
    let zone = read_zone_str(
        "$ORIGIN example.\n@ 300 SOA ns hostmaster 1 7200 1 604800 300\n",
        &name("example."),
        std::path::Path::new("copy"),
    )
    .expect("zone");
    let timers = Timers::of(Some(&zone));
    assert_eq!(timers.refresh, Duration::from_secs(7200));
    assert_eq!(timers.retry, MIN_INTERVAL);
    assert_eq!(timers.expire, Duration::from_secs(604_800));
}

#[test]
fn ixfr_steps_make_one_net_change() {
    let a = || record("a 300 A 192.0.2.1");
    let b = || record("b 300 A 192.0.2.2");
    // Step 1 adds b, step 2 deletes it and deletes a: only a is deleted.
    let steps = vec![(vec![soa(1)], vec![soa(2), b()]), (vec![soa(2), b(), a()], vec![soa(3)])];
    let (deleted, added) = net_change(steps).expect("net change");
    let names = |records: &[Owned]| records.iter().map(|r| format!("{} {}", r.owner, r.rtype)).collect::<Vec<_>>();
    assert_eq!(names(&deleted), ["example. SOA", "a.example. A"]);
    assert_eq!(names(&added), ["example. SOA"]);
    assert_eq!(added[0].serial(), Some(3));
    // Deleted twice without being added between: refused.
    let twice = vec![(vec![soa(1), a()], vec![soa(2)]), (vec![soa(2), a()], vec![soa(3)])];
    assert!(net_change(twice).is_err());
}

/// The whole answer of a transfer through the collector: the error of
/// the record that is refused, or of `finish`.
fn refusal(ixfr: bool, ours: Option<u32>, records: Vec<Owned>) -> String {
    match collect(ixfr, ours, records) {
        Err(e) => e,
        Ok(collector) if !collector.done() => "not complete".to_owned(),
        Ok(collector) => collector.finish(0).err().unwrap_or_else(|| "taken".to_owned()),
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

#[test]
fn retries_start_short_and_grow_to_the_soa_retry() {
    let retry = Duration::from_secs(600);
    let waits: Vec<u64> = (0..12).map(|n| retry_after(n, retry).as_secs()).collect();
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
    assert_eq!(retry_after(u32::MAX, retry), retry);
    assert_eq!(retry_after(3, Duration::from_secs(5)), Duration::from_secs(5));
}
