use std::path::Path;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use super::*;
use crate::keys::{Algorithm, Role};
use crate::zone::reader::read_records_file;

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
}

/// Two made-up keys (the DS arithmetic does not care whether a public
/// key is a point on the curve).
fn keys() -> Vec<PublishedKey> {
    let ksk = PublishedKey::from_public(Algorithm::EcdsaP256Sha256, &[7u8; 64], Role::Ksk);
    let csk = PublishedKey::from_public(Algorithm::EcdsaP256Sha256, &[9u8; 64], Role::Csk);
    vec![ksk, csk]
}

fn wanted() -> WantedDs {
    WantedDs::from_keys(&name("child.test."), &keys(), 2, 3600, 600).expect("SHA-256")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn run(command: &str, wanted: &WantedDs, timeout: Duration) -> Result<(), SubmitError> {
    runtime().block_on(run_submit_command(command, wanted, timeout))
}

/// The bytes of a record's RDATA as hickory read them.
fn rdata_bytes(data: &RData) -> Vec<u8> {
    match data {
        RData::Unknown { rdata, .. } => rdata.anything.clone(),
        RData::Update0(_) => Vec::new(),
        other => panic!("unexpected RDATA {other:?}"),
    }
}

#[test]
fn update_message_deletes_the_ds_rrset_then_adds_each_ds() {
    let wanted = wanted();
    let key = Arc::new(TsigKey::new(name("update-key."), vec![1u8; 32]));
    let request = update_request(&name("test."), &wanted, Some(&key)).expect("request");
    let message = Message::from_vec(&request.bytes).expect("hickory reads the UPDATE");
    assert_eq!(message.metadata.op_code, OpCode::Update);
    assert_eq!(message.metadata.message_type, MessageType::Query);
    assert_eq!(message.metadata.id, request.id());
    // Zone section: the parent zone, SOA, IN.
    assert_eq!(message.queries.len(), 1);
    let zone = &message.queries[0];
    assert_eq!(zone.name().to_string(), "test.");
    assert_eq!(zone.query_type(), RecordType::SOA);
    assert_eq!(zone.query_class(), DNSClass::IN);
    // No prerequisites; the update section in the authority section.
    assert!(message.answers.is_empty(), "prerequisites: {:?}", message.answers);
    let updates = &message.authorities;
    assert_eq!(updates.len(), 3, "{updates:?}");
    let delete = &updates[0];
    assert_eq!(delete.name.to_string(), "child.test.");
    assert_eq!(delete.record_type(), RecordType::DS);
    assert_eq!(delete.dns_class, DNSClass::ANY);
    assert_eq!(delete.ttl, 0);
    assert!(rdata_bytes(&delete.data).is_empty());
    for (add, ds) in updates[1..].iter().zip(&wanted.ds) {
        assert_eq!(add.name.to_string(), "child.test.");
        assert_eq!(add.record_type(), RecordType::DS);
        assert_eq!(add.dns_class, DNSClass::IN);
        assert_eq!(add.ttl, 3600);
        assert_eq!(&rdata_bytes(&add.data), ds);
    }
    // Signed: the TSIG record is the one record of the additional section
    // (hickory-proto without its DNSSEC features leaves it there).
    assert_eq!(message.additionals.len(), 1, "{:?}", message.additionals);
    let tsig = &message.additionals[0];
    assert_eq!(tsig.record_type(), RecordType::TSIG);
    assert_eq!(tsig.name.to_string(), "update-key.");
}

#[test]
fn an_empty_wanted_set_only_deletes_and_an_unsigned_update_has_no_tsig() {
    let wanted = WantedDs { ds: Vec::new(), dnskeys: Vec::new(), ..wanted() };
    let request = update_request(&name("test."), &wanted, None).expect("request");
    let message = Message::from_vec(&request.bytes).expect("hickory reads the UPDATE");
    assert_eq!(message.authorities.len(), 1);
    assert_eq!(message.authorities[0].dns_class, DNSClass::ANY);
    assert!(message.additionals.is_empty() && message.signature().is_none());
}

#[test]
fn a_zone_not_below_the_parent_is_refused_before_anything_is_sent() {
    // Nothing listens on port 9 of 127.0.0.1: an attempt would fail otherwise.
    let server: SocketAddr = ([127, 0, 0, 1], 9).into();
    for parent in ["other.", "child.test.", "a.child.test."] {
        let error = runtime().block_on(push_update(server, None, &name(parent), &wanted())).expect_err(parent);
        assert!(matches!(error, SubmitError::NotBelow { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("child.test.") && text.contains(parent) && text.contains("127.0.0.1:9"), "{text}");
    }
}

#[test]
fn rcodes_are_named_and_a_non_update_answer_is_not_success() {
    assert_eq!(rcode_name(5), "REFUSED");
    assert_eq!(rcode_name(12), "RCODE 12");
    let mut answer = Message::response(7, OpCode::Update);
    answer.metadata.response_code = hickory_proto::op::ResponseCode::NotZone;
    let bytes = answer.to_vec().expect("bytes");
    assert!(matches!(judge_answer(&bytes), Err(Judged::Rcode(r)) if r == "NOTZONE"));
    let query_answer = Message::response(7, OpCode::Query).to_vec().expect("bytes");
    assert!(matches!(judge_answer(&query_answer), Err(Judged::Bad(_))));
    assert!(matches!(judge_answer(&[0u8; 5]), Err(Judged::Bad(_))));
    let ok = Message::response(7, OpCode::Update).to_vec().expect("bytes");
    assert!(judge_answer(&ok).is_ok());
}

#[test]
fn submission_text_is_ds_lines_then_dnskey_lines_and_reads_back() {
    let wanted = wanted();
    let text = submission_text(&wanted);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let tag = keys()[0].tag;
    assert!(lines[0].starts_with(&format!("child.test.\t3600\tIN\tDS\t{tag} 13 2 ")), "{text}");
    assert!(lines[2].starts_with("child.test.\t600\tIN\tDNSKEY\t257 3 13 "), "{text}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("submission");
    std::fs::write(&path, &text).expect("write");
    let records = read_records_file(&path, &name("child.test.")).expect("the zone reader reads it back");
    let read: Vec<(Rtype, u32, Vec<u8>)> = records.into_iter().map(|r| (r.rtype, r.ttl, r.rdata)).collect();
    let expected: Vec<(Rtype, u32, Vec<u8>)> = (wanted.ds.iter().map(|d| (Rtype::DS, 3600, d.clone())))
        .chain(wanted.dnskeys.iter().map(|k| (Rtype::DNSKEY, 600, k.clone())))
        .collect();
    assert_eq!(read, expected);
    let empty = WantedDs { ds: Vec::new(), dnskeys: Vec::new(), ..wanted };
    assert_eq!(submission_text(&empty), "");
}

#[test]
fn from_keys_refuses_an_unknown_digest_type() {
    assert!(WantedDs::from_keys(&name("child.test."), &keys(), 1, 1, 1).is_none());
    let sha384 = WantedDs::from_keys(&name("child.test."), &keys(), 4, 1, 1).expect("SHA-384");
    assert_eq!(sha384.ds[0].len(), 4 + 48);
}

/// A command that saves its standard input and `SIGNET_ZONE` in `dir`.
fn saving_command(dir: &Path) -> String {
    format!("cat > '{0}/stdin' && printf %s \"$SIGNET_ZONE\" > '{0}/zone'", dir.display())
}

#[test]
fn exit_0_is_submitted_and_the_command_receives_the_text_and_the_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wanted = WantedDs { zone: name("Child.TEST."), ..wanted() };
    run(&saving_command(dir.path()), &wanted, Duration::from_secs(10)).expect("submitted");
    let stdin = std::fs::read_to_string(dir.path().join("stdin")).expect("stdin saved");
    assert_eq!(stdin, submission_text(&wanted));
    assert_eq!(std::fs::read_to_string(dir.path().join("zone")).expect("zone saved"), "child.test.");
}

#[test]
fn a_non_zero_exit_names_the_status_and_the_first_lines_of_stderr() {
    let command = "echo 'registry: DS refused' >&2; echo 'second line' >&2; echo out; exit 3";
    let error = run(command, &wanted(), Duration::from_secs(10)).expect_err("exit 3");
    let SubmitError::CommandFailed { status, stderr, .. } = &error else { panic!("{error:?}") };
    assert_eq!(status, "exit status: 3");
    assert_eq!(stderr, "registry: DS refused | second line");
    let text = error.to_string();
    assert!(text.contains("child.test.") && text.contains(command) && text.contains("exit status: 3"), "{text}");
}

#[test]
fn a_command_killed_by_a_signal_is_a_failure() {
    let error = run("kill -9 $$", &wanted(), Duration::from_secs(10)).expect_err("killed");
    assert!(error.to_string().contains("signal: 9"), "{error}");
}

#[test]
fn a_command_that_ignores_a_long_stdin_is_judged_by_its_exit() {
    // More than a pipe holds (64 KiB): the writer must not block the end.
    let many = WantedDs { ds: vec![vec![0x42; 100]; 1000], ..wanted() };
    assert!(submission_text(&many).len() > 200_000);
    let started = Instant::now();
    run("exit 0", &many, Duration::from_secs(10)).expect("exit 0");
    let error = run("exit 1", &many, Duration::from_secs(10)).expect_err("exit 1");
    assert!(matches!(error, SubmitError::CommandFailed { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// The pid a command wrote, once written.
fn pid_in(path: &Path) -> u32 {
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no pid in {}", path.display());
}

/// Waits up to 2 s for process `pid` to be gone (or a zombie).
fn gone(pid: u32) -> bool {
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_none_or(|s| s == "Z") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_timeout_kills_the_whole_process_group_and_names_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    // A background process the shell started, and the shell waiting.
    let command = format!("echo 'waiting for the registry' >&2; sleep 60 & echo $! > '{}'; wait", pidfile.display());
    let started = Instant::now();
    let error = run(&command, &wanted(), Duration::from_millis(500)).expect_err("timeout");
    let took = started.elapsed();
    let SubmitError::CommandTimeout { stderr, .. } = &error else { panic!("{error:?}") };
    assert_eq!(stderr, "waiting for the registry");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(error.to_string().contains("still running after 0.5 s"), "{error}");
    assert!(gone(pid_in(&pidfile)), "the background sleep survived the timeout");
}

#[test]
fn a_submission_dropped_by_its_caller_kills_the_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let command = format!("sleep 60 & echo $! > '{}'; wait", pidfile.display());
    let wanted = wanted();
    let outcome = runtime().block_on(async {
        let submission = run_submit_command(&command, &wanted, Duration::from_secs(60));
        tokio::time::timeout(Duration::from_millis(500), submission).await
    });
    assert!(outcome.is_err(), "the submission should still have been running");
    assert!(gone(pid_in(&pidfile)), "the background sleep survived its abandoned submission");
}

#[test]
fn a_command_that_cannot_start_is_named() {
    // /bin/sh starts; the command inside does not exist: exit 127.
    let error = run("/nonexistent/submit-ds", &wanted(), Duration::from_secs(10)).expect_err("127");
    let text = error.to_string();
    assert!(text.contains("exit status: 127") && text.contains("/nonexistent/submit-ds"), "{text}");
}
