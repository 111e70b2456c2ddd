//! Unit tests of TSIG: round trips, tampering, keys, times, malformed
//! input, key files. The interop tests against BIND's dig and Knot's kdig
//! are in tests/tsig_interop.rs.

use super::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("valid test name")
}

fn key(key_name: &str, secret: &[u8]) -> Arc<TsigKey> {
    Arc::new(TsigKey::new(name(key_name), secret.to_vec()))
}

fn the_key() -> Arc<TsigKey> {
    key("xfr-key.example.", SECRET)
}

/// Looks keys up the way a server would: by name, case-insensitively.
fn lookup(keys: &[Arc<TsigKey>]) -> impl Fn(&Name) -> Option<Arc<TsigKey>> + '_ {
    |wanted| keys.iter().find(|key| key.name().as_ref().eq_ignore_case(wanted.as_ref())).cloned()
}

/// Header with these counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&flags.to_be_bytes());
    counts.iter().for_each(|count| out.extend_from_slice(&count.to_be_bytes()));
    out
}

const QUESTION: &[u8] = b"\x07example\x00\x00\x06\x00\x01";

/// `example. SOA IN` with an EDNS OPT record, so that ARCOUNT is not zero
/// before signing.
fn query(id: u16) -> Vec<u8> {
    let mut out = header(id, 0x0000, [1, 0, 0, 1]);
    out.extend_from_slice(QUESTION);
    out.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
    out
}

/// An answer with `records` A records, owners compressed to the question.
fn answer(id: u16, first: u8, records: u8) -> Vec<u8> {
    let mut out = header(id, 0x8400, [1, u16::from(records), 0, 0]);
    out.extend_from_slice(QUESTION);
    for n in first..first + records {
        out.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02");
        out.push(n);
    }
    out
}

/// A request signed with the key, as the server sees it verified.
fn signed_request(key: &Arc<TsigKey>) -> (Vec<u8>, RequestMac, SignedRequest) {
    let mut request = query(0x1234);
    let mac = sign_request(&mut request, key, NOW).expect("sign request");
    let verified = verify_request(&request, lookup(std::slice::from_ref(key)), NOW + 10)
        .expect("request verifies")
        .expect("request is signed");
    (request, mac, verified)
}

/// Three answer messages, each signed.
fn signed_answers(request: &SignedRequest) -> Vec<Vec<u8>> {
    let mut signer = ResponseSigner::new(request);
    (0..3u8)
        .map(|n| {
            let mut message = answer(0x1234, n * 10, 3);
            signer.sign(&mut message, NOW + 20 + u64::from(n)).expect("sign answer");
            message
        })
        .collect()
}

fn verify_all(key: &Arc<TsigKey>, mac: &RequestMac, messages: &[Vec<u8>], now: u64) -> Result<(), TsigError> {
    let mut verifier = ResponseVerifier::new(key.clone(), mac);
    for message in messages {
        verifier.verify(message, now)?;
    }
    verifier.finish()
}

/// Where the TSIG record and its fields start in a message signed with
/// the test key.
struct Layout {
    tsig: usize,
    time: usize,
    fudge: usize,
    mac: usize,
    original_id: usize,
    error: usize,
}

fn layout(message: &[u8]) -> Layout {
    let tsig = wire::find_tsig(message).expect("readable").expect("signed").start;
    let time = tsig + the_key().name().wire().len() + 10 + ALGORITHM.len();
    let mac = time + 10;
    Layout { tsig, time, fudge: time + 6, mac, original_id: mac + MAC_LEN, error: mac + MAC_LEN + 2 }
}

fn flipped(message: &[u8], at: usize) -> Vec<u8> {
    let mut copy = message.to_vec();
    copy[at] ^= 0x01;
    copy
}

#[test]
fn request_round_trip() {
    let key = the_key();
    let (request, mac, verified) = signed_request(&key);
    assert_eq!(verified.key_name(), key.name());
    assert_eq!(mac.as_bytes().len(), MAC_LEN);
    assert_eq!(without_tsig(&request).expect("readable").as_ref(), query(0x1234).as_slice());
    assert_eq!(wire::arcount(&request), Ok(2));
    // Unsigned requests are not refused: the caller's access list decides.
    assert!(verify_request(&query(7), lookup(&[key]), NOW).expect("readable").is_none());
}

#[test]
fn key_names_compare_case_insensitively() {
    let upper = key("XFR-Key.Example.", SECRET);
    let mut request = query(1);
    sign_request(&mut request, &upper, NOW).expect("sign");
    let verified = verify_request(&request, lookup(&[the_key()]), NOW).expect("verifies");
    assert!(verified.is_some(), "the MAC covers the lowercased key name");
}

#[test]
fn three_signed_answers_verify() {
    let key = the_key();
    let (_, mac, request) = signed_request(&key);
    let answers = signed_answers(&request);
    assert_eq!(verify_all(&key, &mac, &answers, NOW + 30), Ok(()));
    // Out of order, or one left out, the chain of MACs breaks.
    let swapped = vec![answers[0].clone(), answers[2].clone(), answers[1].clone()];
    assert!(matches!(verify_all(&key, &mac, &swapped, NOW), Err(TsigError::BadSig { .. })));
    let skipped = vec![answers[0].clone(), answers[2].clone()];
    assert!(matches!(verify_all(&key, &mac, &skipped, NOW), Err(TsigError::BadSig { .. })));
    // Another request's MAC does not verify the first answer.
    let other = RequestMac(vec![0; MAC_LEN]);
    assert!(matches!(verify_all(&key, &other, &answers, NOW), Err(TsigError::BadSig { .. })));
}

/// Signs `message` as the next signed message after `unsigned` ones (RFC
/// 8945 §5.3.1), as a server that signs only some messages would.
fn sign_after_unsigned(key: &TsigKey, prior: &[u8], unsigned: &[Vec<u8>], message: &mut Vec<u8>) -> Vec<u8> {
    let mut context = key.context();
    digest_mac(&mut context, prior);
    unsigned.iter().for_each(|m| context.update(m));
    context.update(message);
    let variables = Variables::signing(NOW);
    variables.digest_timers(&mut context);
    let mac = context.sign();
    append_tsig(message, key.name().wire(), ALGORITHM, &variables, mac.as_ref()).expect("append");
    mac.as_ref().to_vec()
}

/// A first signed answer, then `unsigned` unsigned ones, then a signed one.
fn answers_with_unsigned(key: &Arc<TsigKey>, request: &SignedRequest, unsigned: usize) -> Vec<Vec<u8>> {
    let mut first = answer(9, 0, 1);
    let prior = sign_answer(key, &request.mac, &mut first, &Variables::signing(NOW), true).expect("sign");
    let middle: Vec<Vec<u8>> = (0..unsigned).map(|n| answer(9, (n % 200) as u8, 2)).collect();
    let mut last = answer(9, 250, 1);
    sign_after_unsigned(key, prior.as_ref(), &middle, &mut last);
    [vec![first], middle, vec![last]].concat()
}

#[test]
fn unsigned_middle_messages_are_covered_by_the_next_mac() {
    let key = the_key();
    let (_, mac, request) = signed_request(&key);
    let answers = answers_with_unsigned(&key, &request, 1);
    assert_eq!(verify_all(&key, &mac, &answers, NOW), Ok(()));
    // The unsigned message is covered: changing it breaks the next MAC.
    let mut tampered = answers.clone();
    let last_byte = tampered[1].len() - 1;
    tampered[1][last_byte] ^= 1;
    assert!(matches!(verify_all(&key, &mac, &tampered, NOW), Err(TsigError::BadSig { .. })));
    // 99 unsigned in a row are accepted, 100 are not.
    assert_eq!(verify_all(&key, &mac, &answers_with_unsigned(&key, &request, 99), NOW), Ok(()));
    let too_many = answers_with_unsigned(&key, &request, 100);
    assert_eq!(verify_all(&key, &mac, &too_many, NOW), Err(TsigError::TooManyUnsigned));
}

#[test]
fn first_and_last_messages_must_be_signed() {
    let key = the_key();
    let (_, mac, request) = signed_request(&key);
    let answers = answers_with_unsigned(&key, &request, 1);
    assert_eq!(verify_all(&key, &mac, &answers[..2], NOW), Err(TsigError::LastUnsigned));
    assert_eq!(verify_all(&key, &mac, &answers[1..], NOW), Err(TsigError::Unsigned));
    assert_eq!(verify_all(&key, &mac, &[], NOW), Err(TsigError::Unsigned));
}

#[test]
fn a_refused_answer_stays_refused() {
    let key = the_key();
    let (_, mac, request) = signed_request(&key);
    let answers = signed_answers(&request);
    let mut verifier = ResponseVerifier::new(key, &mac);
    assert!(verifier.verify(&flipped(&answers[0], 2), NOW).is_err());
    assert_eq!(verifier.verify(&answers[0], NOW), Err(TsigError::Abandoned));
    assert_eq!(verifier.finish(), Err(TsigError::Abandoned));
}

#[test]
fn every_tampered_byte_of_a_request_is_refused() {
    let key = the_key();
    let (request, _, _) = signed_request(&key);
    let keys = [key];
    for at in 2..request.len() {
        let result = verify_request(&flipped(&request, at), lookup(&keys), NOW);
        assert!(!matches!(result, Ok(Some(_))), "byte {at} changed, still verifies");
    }
    let bad_sig = |at: usize| {
        let result = verify_request(&flipped(&request, at), lookup(&keys), NOW);
        matches!(result, Err(ref refusal) if refusal.kind() == &RefusalKind::BadSig)
    };
    let l = layout(&request);
    let regions = [
        ("flags", 2),
        ("question type", 12 + 10),
        ("OPT", l.tsig - 3),
        ("time", l.time + 5),
        ("fudge", l.fudge + 1),
        ("MAC", l.mac + 7),
        ("original ID", l.original_id + 1),
        ("error", l.error + 1),
    ];
    for (region, at) in regions {
        assert!(bad_sig(at), "{region} changed: not BADSIG");
    }
}

#[test]
fn every_tampered_byte_of_an_answer_is_refused() {
    let key = the_key();
    let (_, mac, request) = signed_request(&key);
    let answers = signed_answers(&request);
    for (index, message) in answers.iter().enumerate() {
        for at in 2..message.len() {
            let mut tampered = answers.clone();
            tampered[index] = flipped(message, at);
            assert!(verify_all(&key, &mac, &tampered, NOW).is_err(), "message {index} byte {at} changed, verifies");
        }
        let l = layout(message);
        for (region, at) in [("flags", 3), ("rdata", l.tsig - 1), ("time", l.time + 5), ("MAC", l.mac)] {
            let mut tampered = answers.clone();
            tampered[index] = flipped(message, at);
            let result = verify_all(&key, &mac, &tampered, NOW);
            assert!(matches!(result, Err(TsigError::BadSig { .. })), "message {index} {region}: {result:?}");
        }
    }
}

#[test]
fn the_original_id_is_what_the_mac_covers() {
    let key = the_key();
    let (request, mac, verified) = signed_request(&key);
    // A forwarder changed the header's ID: the TSIG's original ID is used.
    let mut forwarded = request.clone();
    forwarded[..2].copy_from_slice(&0xbeefu16.to_be_bytes());
    assert!(verify_request(&forwarded, lookup(std::slice::from_ref(&key)), NOW).expect("verifies").is_some());
    let mut answers = signed_answers(&verified);
    answers[0][..2].copy_from_slice(&0xbeefu16.to_be_bytes());
    assert_eq!(verify_all(&key, &mac, &answers, NOW), Ok(()));
}

#[test]
fn unknown_key_or_algorithm_is_badkey() {
    let (request, _, _) = signed_request(&the_key());
    let other = key("other-key.", SECRET);
    let refusal = verify_request(&request, lookup(&[other]), NOW).expect_err("unknown key");
    assert_eq!((refusal.kind(), refusal.rcode()), (&RefusalKind::BadKey, ResponseCode::NotAuth));
    assert_eq!(refusal.key_name(), Some(the_key().name()));
    assert!(refusal.to_string().starts_with("TSIG BADKEY"), "{refusal}");
    // A lookup that hands back a key of another name is not trusted.
    let refusal = verify_request(&request, |_: &Name| Some(key("other-key.", SECRET)), NOW).expect_err("mismatch");
    assert_eq!(refusal.kind(), &RefusalKind::BadKey);
    // Another algorithm (hmac-sha251) under our key's name: BADKEY too.
    let mut request = query(5);
    let key = the_key();
    sign_request(&mut request, &key, NOW).expect("sign");
    let algorithm_at = layout(&request).time - ALGORITHM.len();
    request[algorithm_at + 10..algorithm_at + 12].copy_from_slice(b"51");
    let refusal = verify_request(&request, lookup(&[key]), NOW).expect_err("other algorithm");
    assert_eq!(refusal.kind(), &RefusalKind::BadKey);
}

#[test]
fn wrong_secret_is_badsig_and_answered_unsigned() {
    let (request, mac, _) = signed_request(&the_key());
    let wrong = key("xfr-key.example.", b"another secret of the same name!");
    let refusal = verify_request(&request, lookup(&[wrong]), NOW).expect_err("wrong secret");
    assert_eq!(refusal.kind(), &RefusalKind::BadSig);
    assert_eq!(refusal.tsig_error(), Some(TsigRcode::BADSIG));
    let mut error_answer = header(0x1234, 0x8409, [1, 0, 0, 0]);
    error_answer.extend_from_slice(QUESTION);
    refusal_tsig(&mut error_answer, &refusal, NOW).expect("append");
    let rr = wire::find_tsig(&error_answer).expect("readable").expect("has TSIG");
    assert_eq!((rr.mac.len(), rr.error, rr.key_name.clone()), (0, 16, the_key().name().clone()));
    let result = verify_all(&the_key(), &mac, &[error_answer], NOW);
    assert_eq!(result, Err(TsigError::Server { error: TsigRcode::BADSIG, server_time: None }));
}

#[test]
fn time_outside_the_fudge_is_badtime_with_a_signed_answer() {
    let key = the_key();
    let mut request = query(3);
    let mac = sign_request(&mut request, &key, NOW).expect("sign");
    let keys = [key.clone()];
    assert!(verify_request(&request, lookup(&keys), NOW + u64::from(FUDGE)).expect("in fudge").is_some());
    assert!(verify_request(&request, lookup(&keys), NOW - u64::from(FUDGE)).expect("in fudge").is_some());
    let late = NOW + u64::from(FUDGE) + 1;
    let refusal = verify_request(&request, lookup(&keys), late).expect_err("late");
    assert_eq!(refusal.kind(), &RefusalKind::BadTime { signed: NOW, now: late, fudge: FUDGE });
    assert!(refusal.to_string().contains("BADTIME"));
    let mut error_answer = header(3, 0x8409, [1, 0, 0, 0]);
    error_answer.extend_from_slice(QUESTION);
    let unsigned = error_answer.clone();
    refusal_tsig(&mut error_answer, &refusal, late).expect("append");
    let rr = wire::find_tsig(&error_answer).expect("readable").expect("has TSIG");
    // Signed over the request's MAC, with the request's time and ours in other data.
    assert_eq!((rr.time_signed, rr.error, server_time(rr.other)), (NOW, 18, Some(late)));
    let mut context = key.context();
    digest_mac(&mut context, mac.as_bytes());
    context.update(&unsigned);
    Variables::received(&rr).digest(&mut context, &key);
    assert_eq!(context.sign().as_ref(), rr.mac);
    let result = verify_all(&key, &mac, &[error_answer], late);
    assert_eq!(result, Err(TsigError::Server { error: TsigRcode::BADTIME, server_time: Some(late) }));
    // An answer signed too long ago is refused by the client.
    let (_, mac, request) = signed_request(&key);
    let answers = signed_answers(&request);
    let result = verify_all(&key, &mac, &answers, NOW + 20 + u64::from(FUDGE) + 1);
    assert!(matches!(result, Err(TsigError::BadTime { .. })), "{result:?}");
}

#[test]
fn truncated_macs_are_refused() {
    let key = the_key();
    let (request, mac, verified) = signed_request(&key);
    let truncate = |message: &[u8], keep: usize| {
        let l = layout(message);
        let mut out = message[..l.mac - 2].to_vec();
        out.extend_from_slice(&(keep as u16).to_be_bytes());
        out.extend_from_slice(&message[l.mac..l.mac + keep]);
        out.extend_from_slice(&message[l.original_id..]);
        let rdlength_at = l.time - ALGORITHM.len() - 2;
        let rdlength = u16::from_be_bytes([out[rdlength_at], out[rdlength_at + 1]]) - (MAC_LEN - keep) as u16;
        out[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
        out
    };
    let keys = [key.clone()];
    let refusal = verify_request(&truncate(&request, 16), lookup(&keys), NOW).expect_err("truncated");
    assert_eq!(refusal.kind(), &RefusalKind::BadTrunc { mac_len: 16 });
    let refusal = verify_request(&truncate(&request, 10), lookup(&keys), NOW).expect_err("too short");
    assert_eq!(refusal.kind(), &RefusalKind::FormErr(Malformed::MacSize(10)));
    assert_eq!(refusal.rcode(), ResponseCode::FormErr);
    let mut answers = signed_answers(&verified);
    answers[0] = truncate(&answers[0], 16);
    assert_eq!(verify_all(&key, &mac, &answers, NOW), Err(TsigError::MacLength { len: 16 }));
}

#[test]
fn misplaced_tsig_records_are_format_errors() {
    let key = the_key();
    let (request, _, _) = signed_request(&key);
    // The TSIG record followed by another record.
    let mut after = request.clone();
    after[11] += 1;
    after.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x7f\x00\x00\x01");
    let refusal = verify_request(&after, lookup(std::slice::from_ref(&key)), NOW).expect_err("not last");
    assert_eq!(refusal.kind(), &RefusalKind::FormErr(Malformed::TsigNotLast));
    // Two TSIG records.
    let mut twice = request.clone();
    sign_request(&mut twice, &key, NOW).expect("sign again");
    assert_eq!(wire::find_tsig(&twice).map(|_| ()), Err(Malformed::TsigNotLast));
    // Bytes after the TSIG record.
    let mut trailing = request.clone();
    trailing.push(0);
    assert_eq!(wire::find_tsig(&trailing).map(|_| ()), Err(Malformed::TrailingBytes));
}

#[test]
fn truncations_and_garbage_never_panic() {
    let key = the_key();
    let (request, mac, verified) = signed_request(&key);
    let answers = signed_answers(&verified);
    let keys = [key.clone()];
    for message in std::iter::once(&request).chain(&answers) {
        for len in 0..message.len() {
            let cut = &message[..len];
            assert!(!matches!(verify_request(cut, lookup(&keys), NOW), Ok(Some(_))), "cut at {len} verifies");
            assert!(ResponseVerifier::new(key.clone(), &mac).verify(cut, NOW).is_err(), "cut at {len}");
            let _ = without_tsig(cut);
        }
    }
    // Pseudo-random bytes, with a header whose counts ask for records.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in 12..600 {
        let mut garbage: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        garbage[4..12].copy_from_slice(&[0, 1, 0, 2, 0, 1, 0, 2]);
        let _ = verify_request(&garbage, lookup(&keys), NOW);
        let _ = ResponseVerifier::new(key.clone(), &mac).verify(&garbage, NOW);
    }
}

#[test]
fn compression_loops_are_refused() {
    // An answer whose owner points at itself: skipped (pointers are not
    // followed when skipping), so the message reads as unsigned.
    let mut looped = header(1, 0x8400, [0, 1, 0, 0]);
    looped.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x7f\x00\x00\x01");
    assert!(verify_request(&looped, |_: &Name| None, NOW).expect("readable").is_none());
    // A TSIG owner name that points at itself, and one that points forward.
    for pointer in [b"\xc0\x0c", b"\xc0\x20"] {
        let mut message = header(1, 0, [0, 0, 0, 1]);
        message.extend_from_slice(pointer);
        message.extend_from_slice(b"\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x1d");
        message.extend_from_slice(ALGORITHM);
        message.extend_from_slice(&[0; 16]);
        let refusal = verify_request(&message, |_: &Name| None, NOW).expect_err("loop");
        assert_eq!(refusal.kind(), &RefusalKind::FormErr(Malformed::BadName));
    }
    // A compressed TSIG owner name pointing back is fine.
    let mut message = header(1, 0, [1, 0, 0, 1]);
    message.extend_from_slice(QUESTION);
    message.extend_from_slice(b"\xc0\x0c\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x1d");
    message.extend_from_slice(ALGORITHM);
    message.extend_from_slice(&[0; 16]);
    let rr = wire::find_tsig(&message).expect("readable").expect("has TSIG");
    assert_eq!(rr.key_name, name("example."));
}

#[test]
fn signing_refuses_what_cannot_be_signed() {
    let key = the_key();
    assert_eq!(sign_request(&mut vec![0; 5], &key, NOW), Err(TsigError::Malformed(Malformed::Truncated)));
    let mut full = query(1);
    full.resize(MAX_MESSAGE_LEN - 10, 0);
    assert_eq!(sign_request(&mut full, &key, NOW), Err(TsigError::TooLong));
    let mut message = query(1);
    let before = message.len();
    sign_request(&mut message, &key, NOW).expect("sign");
    assert_eq!(message.len() - before, key.rr_len());
}

#[test]
fn debug_and_errors_never_show_the_secret() {
    let key = TsigKey::new(name("k."), b"SECRET-MATERIAL".to_vec());
    let shown = format!("{key:?}");
    assert!(shown.contains("k.") && shown.contains("hmac-sha256") && !shown.contains("SECRET"), "{shown}");
}

mod key_files {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const BASE64_SECRET: &str = "b4fSOyWnfWwOmh79zp1G23uCxK70RS/RKVxwJD5wmJ8=";

    fn write(dir: &tempfile::TempDir, file: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write key file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn secret() -> Vec<u8> {
        data_encoding::BASE64.decode(BASE64_SECRET.as_bytes()).expect("base64")
    }

    #[test]
    fn reads_bind_key_clauses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "// written by tsig-keygen\nkey \"xfr-key.\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{BASE64_SECRET}\";\n}};\n"
        );
        let key = TsigKey::read_file(write(&dir, "bind.key", &text, 0o600)).expect("BIND key");
        assert_eq!((key.name(), key.secret.as_slice()), (&name("xfr-key."), secret().as_slice()));
        let text = format!(
            "/* two keys */ key a {{ algorithm HMAC-SHA256; secret \"{BASE64_SECRET}\"; }};\n\
             # another\nkey \"b\" {{ secret \"{BASE64_SECRET}\"; algorithm hmac-sha256.; }};"
        );
        let path = write(&dir, "two.key", &text, 0o400);
        let error = TsigKey::read_file(&path).expect_err("two keys");
        assert!(matches!(error, KeyFileError::SeveralKeys { .. }), "{error}");
        let key = TsigKey::read_file_named(&path, &name("B.")).expect("named");
        assert_eq!(key.name(), &name("b."));
        let error = TsigKey::read_file_named(&path, &name("c.")).expect_err("absent");
        assert!(error.to_string().contains("no key named c."), "{error}");
    }

    #[test]
    fn reads_knot_key_sections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "# hmac-sha256:xfr-key:{BASE64_SECRET}\nkey:\n  - id: xfr-key\n    algorithm: hmac-sha256\n    secret: {BASE64_SECRET}\n"
        );
        let key = TsigKey::read_file(write(&dir, "knot.key", &text, 0o600)).expect("Knot key");
        assert_eq!((key.name(), key.secret.as_slice()), (&name("xfr-key."), secret().as_slice()));
        let text = "key:\n  - algorithm: hmac-sha256\n    secret: AAAA\n";
        let error = TsigKey::read_file(write(&dir, "noid.key", text, 0o600)).expect_err("no id");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn a_secret_shorter_than_the_hash_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Three bytes ("abc"), then 31: both shorter than hmac-sha256's 32.
        for secret in ["YWJj", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="] {
            let text = format!("key \"k.\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n");
            let error = TsigKey::read_file(write(&dir, "short.key", &text, 0o600)).expect_err("short secret");
            assert!(matches!(error, KeyFileError::ShortSecret { .. }), "{error}");
            assert!(error.to_string().contains("at least 32"), "{error}");
            assert!(!error.to_string().contains(secret), "the secret is quoted: {error}");
        }
    }

    #[test]
    fn reads_a_bare_secret_only_with_a_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "bare.key", &format!("{BASE64_SECRET}\n"), 0o600);
        let key = TsigKey::read_file_named(&path, &name("xfr-key.")).expect("bare secret");
        assert_eq!(key.secret.as_slice(), secret().as_slice());
        assert!(matches!(TsigKey::read_file(&path), Err(KeyFileError::Nameless { .. })));
    }

    #[test]
    fn refuses_files_others_may_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o644, 0o640, 0o602] {
            let path = write(&dir, "open.key", &format!("{BASE64_SECRET}\n"), mode);
            let error = TsigKey::read_file_named(&path, &name("k.")).expect_err("mode");
            let text = error.to_string();
            assert!(text.contains("open.key") && text.contains(&format!("{mode:04o}")), "{text}");
        }
    }

    #[test]
    fn refuses_other_algorithms_and_bad_text_without_showing_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (format!("key k {{ algorithm hmac-md5; secret \"{BASE64_SECRET}\"; }};"), "hmac-md5"),
            (format!("key:\n  - id: k\n    algorithm: hmac-sha512\n    secret: {BASE64_SECRET}\n"), "hmac-sha512"),
            (format!("key k {{ algorithm hmac-sha256; secret \"{BASE64_SECRET}\" }};"), "`;`"),
            (format!("key k {{ algorithm hmac-sha256; secret \"{BASE64_SECRET}"), "unterminated"),
            (format!("key k {{ algorithm hmac-sha256; secret \"{BASE64_SECRET}!\"; }};"), "base64"),
            ("key k { algorithm hmac-sha256; secret \"\"; };".to_owned(), "base64"),
            ("key k { algorithm hmac-sha256; };".to_owned(), "no secret"),
            (format!("{BASE64_SECRET} {BASE64_SECRET}"), "one line of base64"),
            (format!("key:\n  - id: k\n    secret: {BASE64_SECRET}\n    colour: blue\n"), "line 4"),
            ("".to_owned(), "no key"),
        ];
        for (text, expected) in cases {
            let path = write(&dir, "bad.key", &text, 0o600);
            let error = TsigKey::read_file(&path).expect_err(&text);
            let shown = format!("{error} {error:?}");
            assert!(shown.contains(expected), "{text:?}: {shown}");
            assert!(!shown.contains(&BASE64_SECRET[..20]), "secret shown: {shown}");
        }
    }
}
