//! TSIG against independent implementations.
//!
//! Server side: BIND's `dig` and Knot's `kdig` sign queries that
//! `verify_request` must accept (and refuse with another secret), and
//! check the answers `ResponseSigner` signs: one message over UDP, and a
//! three-message AXFR over TCP, where each later MAC chains on the one
//! before (RFC 8945 §5.3.1). A tampered MAC, or a client with another
//! secret, must make them fail. dig checks every message of a transfer;
//! kdig (3.2, and its source today) checks only the first.
//!
//! Client side: `sign_request` and `ResponseVerifier` take an AXFR of
//! many messages from Knot's `knotd`, and refuse it with another secret
//! or with a byte changed in a later message.
//!
//! Skipped with a note when a tool is not installed (.ci/setup installs
//! bind9-dnsutils, knot-dnsutils and knot).

use crate::common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name as DnsName, RData, Record};
use signet::Name;
use signet::xfr::tsig::{RefusalKind, ResponseSigner, TsigKey, refusal_tsig, verify_request, without_tsig};

const KEY_NAME: &str = "xfr-key.";
const SECRET: &str = "b4fSOyWnfWwOmh79zp1G23uCxK70RS/RKVxwJD5wmJ8=";
const OTHER_SECRET: &str = "khvW3wVmn729+Y1YnT4X6dS6hgYvGrqejadbWEla4h0=";

/// The two clients: how each is called, and how it says that the answer's
/// TSIG did not verify.
#[derive(Debug, Clone, Copy)]
struct Client {
    tool: &'static str,
    /// Does it check the MAC of every message of a transfer, or only the
    /// first (kdig_exec.c: "Verify 1. signature")?
    checks_every_xfr_message: bool,
    /// Options for one UDP try with a short wait.
    udp_options: &'static [&'static str],
    /// Text the client prints when a TSIG does not verify.
    failure_marks: &'static [&'static str],
}

const DIG: Client = Client {
    tool: "dig",
    checks_every_xfr_message: true,
    udp_options: &["+tries=1", "+time=2"],
    failure_marks: &["Couldn't verify signature", "could not be validated", "tsig verify failure", "Transfer failed"],
};

const KDIG: Client = Client {
    tool: "kdig",
    checks_every_xfr_message: false,
    udp_options: &["+retry=0", "+time=2"],
    failure_marks: &["failed to verify"],
};

impl Client {
    fn command(&self, port: u16, secret: &str, qtype: &str, udp: bool) -> Command {
        let mut command = Command::new(self.tool);
        command.args(["-p", &port.to_string(), "@127.0.0.1", "-y", &format!("hmac-sha256:{KEY_NAME}:{secret}")]);
        command.args(["example.", qtype]);
        if udp {
            command.args(self.udp_options);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    fn reports_failure(&self, output: &str) -> bool {
        self.failure_marks.iter().any(|mark| output.contains(mark))
    }
}

fn key(secret: &str) -> Arc<TsigKey> {
    let secret = data_encoding::BASE64.decode(secret.as_bytes()).expect("base64");
    Arc::new(TsigKey::new(Name::from_text(KEY_NAME, None).expect("name"), secret))
}

fn lookup(key: &Arc<TsigKey>) -> impl Fn(&Name) -> Option<Arc<TsigKey>> + '_ {
    move |name: &Name| name.as_ref().eq_ignore_case(key.name().as_ref()).then(|| key.clone())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

fn dns_name(text: &str) -> DnsName {
    DnsName::from_ascii(text).expect("name")
}

fn soa() -> Record {
    let soa = SOA::new(dns_name("ns.example."), dns_name("hostmaster.example."), 2026, 3600, 600, 86400, 300);
    Record::from_rdata(dns_name("example."), 3600, RData::SOA(soa))
}

fn host(label: &str, last: u8) -> Record {
    let owner = dns_name(&format!("{label}.example."));
    Record::from_rdata(owner, 3600, RData::A(A(Ipv4Addr::new(192, 0, 2, last))))
}

/// An answer message to `query` with these records; the question only if
/// `with_question`.
fn answer(query: &Message, records: Vec<Record>, with_question: bool) -> Vec<u8> {
    let mut message = Message::response(query.metadata.id, OpCode::Query);
    message.metadata.authoritative = true;
    if with_question {
        message.add_queries(query.queries.iter().cloned());
    }
    message.add_answers(records);
    message.to_vec().expect("encode answer")
}

fn parse_query(wire: &[u8]) -> Message {
    Message::from_vec(&without_tsig(wire).expect("readable query")).expect("query parses")
}

fn output_of(child: Child) -> String {
    let output = child.wait_with_output().expect("client ran");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Runs the client against a UDP socket, answers its one query with
/// `respond`, and returns the query and what the client printed.
fn udp_exchange(client: Client, secret: &str, respond: impl FnOnce(&[u8]) -> Vec<u8>) -> (Vec<u8>, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let port = socket.local_addr().expect("address").port();
    let child = client.command(port, secret, "SOA", true).spawn().expect("start client");
    let mut buffer = vec![0; 65535];
    let (len, peer) = socket.recv_from(&mut buffer).expect("a query from the client");
    let query = buffer[..len].to_vec();
    socket.send_to(&respond(&query), peer).expect("send answer");
    let output = output_of(child);
    eprintln!("--- {} ---\n{output}", client.tool);
    (query, output)
}

/// Verifies the query with the right key (and, refused, with another
/// secret) and signs a one-record answer; `tamper` damages its MAC.
fn signed_soa_answer(query: &[u8], tamper: bool) -> Vec<u8> {
    let request = verify_request(query, lookup(&key(SECRET)), now()).expect("query verifies").expect("query is signed");
    let refusal = verify_request(query, lookup(&key(OTHER_SECRET)), now()).expect_err("other secret");
    assert_eq!(refusal.kind(), &RefusalKind::BadSig);
    let mut message = answer(&parse_query(query), vec![soa()], true);
    ResponseSigner::new(&request).sign(&mut message, now()).expect("sign");
    if tamper {
        let last_mac_byte = message.len() - 7;
        message[last_mac_byte] ^= 1;
    }
    message
}

/// The error answer to a query signed with a key we do not have the
/// secret of.
fn refusal_answer(query: &[u8]) -> Vec<u8> {
    let refusal = verify_request(query, lookup(&key(SECRET)), now()).expect_err("wrong secret");
    assert_eq!(refusal.kind(), &RefusalKind::BadSig);
    let mut reply = Message::error_msg(parse_query(query).metadata.id, OpCode::Query, ResponseCode::NotAuth);
    reply.add_queries(parse_query(query).queries);
    let mut message = reply.to_vec().expect("encode");
    refusal_tsig(&mut message, &refusal, now()).expect("refusal TSIG");
    message
}

fn clients() -> Vec<Client> {
    [DIG, KDIG].into_iter().filter(|client| common::have_tool(client.tool)).collect()
}

#[test]
fn udp_query_and_signed_answer_interoperate() {
    for client in clients() {
        let (_, output) = udp_exchange(client, SECRET, |query| signed_soa_answer(query, false));
        assert!(output.contains("hostmaster.example."), "{}: no answer\n{output}", client.tool);
        assert!(output.contains("NOERROR 0"), "{}: no TSIG record\n{output}", client.tool);
        assert!(!client.reports_failure(&output), "{}: TSIG not accepted\n{output}", client.tool);
        let (_, output) = udp_exchange(client, SECRET, |query| signed_soa_answer(query, true));
        assert!(client.reports_failure(&output), "{}: tampered MAC accepted\n{output}", client.tool);
    }
}

#[test]
fn a_query_with_another_secret_is_answered_badsig() {
    for client in clients() {
        let (_, output) = udp_exchange(client, OTHER_SECRET, refusal_answer);
        // dig shows NOTAUTH and the TSIG error apart, kdig the extended
        // RCODE (BADSIG); both say that the answer does not verify.
        let says_badsig = output.contains("BADSIG") && client.reports_failure(&output);
        assert!(says_badsig, "{}: no BADSIG\n{output}", client.tool);
    }
}

/// Serves one AXFR over TCP in three signed messages; `tamper` damages
/// the MAC of that message (0-based).
fn serve_axfr(listener: TcpListener, tamper: Option<usize>) -> Result<(), String> {
    let (mut stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut len = [0; 2];
    stream.read_exact(&mut len).map_err(|e| format!("read length: {e}"))?;
    let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut query).map_err(|e| format!("read query: {e}"))?;
    let request = match verify_request(&query, lookup(&key(SECRET)), now()) {
        Ok(Some(request)) => request,
        Ok(None) => return Err("unsigned AXFR query".into()),
        Err(refusal) => {
            let mut message = refusal_answer(&query);
            write_framed(&mut stream, &mut message)?;
            return Err(refusal.to_string());
        }
    };
    let parsed = parse_query(&query);
    let parts = [
        (vec![soa(), host("www", 1), host("mail", 2)], true),
        (vec![host("a", 3), host("b", 4), host("c", 5)], false),
        (vec![host("d", 6), soa()], false),
    ];
    let mut signer = ResponseSigner::new(&request);
    for (index, (records, with_question)) in parts.into_iter().enumerate() {
        let mut message = answer(&parsed, records, with_question);
        signer.sign(&mut message, now()).map_err(|e| e.to_string())?;
        if tamper == Some(index) {
            let last_mac_byte = message.len() - 7;
            message[last_mac_byte] ^= 1;
        }
        write_framed(&mut stream, &mut message)?;
    }
    Ok(())
}

fn write_framed(stream: &mut std::net::TcpStream, message: &mut Vec<u8>) -> Result<(), String> {
    let len = u16::try_from(message.len()).map_err(|_| "message too long")?;
    message.splice(0..0, len.to_be_bytes());
    stream.write_all(message).map_err(|e| format!("write: {e}"))
}

/// Runs `client` for an AXFR against a server thread; returns what the
/// client printed and what the server reported.
fn axfr_exchange(client: Client, secret: &str, tamper: Option<usize>) -> (String, Result<(), String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
    let port = listener.local_addr().expect("address").port();
    let server = std::thread::spawn(move || serve_axfr(listener, tamper));
    let child = client.command(port, secret, "AXFR", false).spawn().expect("start client");
    let output = output_of(child);
    eprintln!("--- {} AXFR, tamper {tamper:?} ---\n{output}", client.tool);
    (output, server.join().expect("server thread"))
}

#[test]
fn a_signed_three_message_axfr_interoperates() {
    for client in clients() {
        let (output, served) = axfr_exchange(client, SECRET, None);
        assert_eq!(served, Ok(()), "{}: server", client.tool);
        assert!(!client.reports_failure(&output), "{}: TSIG not accepted\n{output}", client.tool);
        for host in ["www", "mail", "a", "b", "c", "d"] {
            assert!(output.contains(&format!("{host}.example.")), "{}: {host} missing\n{output}", client.tool);
        }
        // Each message's MAC is checked, the later ones too (by dig).
        let checked = if client.checks_every_xfr_message { 3 } else { 1 };
        for message in 0..checked {
            let (output, _) = axfr_exchange(client, SECRET, Some(message));
            assert!(client.reports_failure(&output), "{}: tampered message {message} accepted\n{output}", client.tool);
        }
        let (output, served) = axfr_exchange(client, OTHER_SECRET, None);
        assert!(served.is_err_and(|e| e.contains("BADSIG")), "{}: server accepted another secret", client.tool);
        assert!(!output.contains("d.example."), "{}: transfer with another secret\n{output}", client.tool);
    }
}

// ---- Our client against knotd ----

/// A knotd serving `example.` on a loopback port, stopped when dropped.
struct Knotd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Knotd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many TXT records the zone has: enough for many messages.
const TXT_RECORDS: usize = 3000;

fn start_knotd() -> Knotd {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut zone = String::from(
        "$ORIGIN example.\n$TTL 3600\n@ SOA ns hostmaster 2026 3600 600 86400 300\n@ NS ns\nns A 192.0.2.53\n",
    );
    for n in 0..TXT_RECORDS {
        zone.push_str(&format!("t{n} TXT \"{}\"\n", "x".repeat(100)));
    }
    std::fs::write(dir.path().join("example.zone"), zone).expect("zone file");
    std::fs::create_dir(dir.path().join("db")).expect("database directory");
    let port = crate::common::dns_servers::free_port();
    let root = dir.path().display();
    let config = format!(
        "server:\n  rundir: \"{root}\"\n  listen: 127.0.0.1@{port}\n\
         database:\n  storage: \"{root}/db\"\n\
         log:\n  - target: stderr\n    any: warning\n\
         key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         acl:\n  - id: transfer\n    key: {KEY_NAME}\n    action: transfer\n\
         zone:\n  - domain: example.\n    storage: \"{root}\"\n    file: example.zone\n    acl: transfer\n"
    );
    let config_path = dir.path().join("knot.conf");
    std::fs::write(&config_path, config).expect("knot.conf");
    let child = Command::new("knotd")
        .arg("-c")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start knotd");
    Knotd { child, port, _dir: dir }
}

/// What one AXFR from knotd gave: the messages, verified or not.
#[derive(Debug)]
struct Transfer {
    messages: Vec<Vec<u8>>,
    records: usize,
}

/// Reads AXFR messages until the closing SOA, or until a message with an
/// error RCODE (the zone not loaded yet, or the key refused).
fn read_axfr(stream: &mut std::net::TcpStream) -> std::io::Result<Transfer> {
    let (mut messages, mut records, mut soas) = (Vec::new(), 0, 0);
    while soas < 2 {
        let mut len = [0; 2];
        stream.read_exact(&mut len)?;
        let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut message)?;
        let parsed = Message::from_vec(&without_tsig(&message).expect("readable")).expect("parses");
        let stop = parsed.metadata.response_code != ResponseCode::NoError;
        records += parsed.answers.len();
        soas += parsed.answers.iter().filter(|r| matches!(r.data, RData::SOA(_))).count();
        messages.push(message);
        if stop {
            break;
        }
    }
    Ok(Transfer { messages, records })
}

/// Sends a signed AXFR query for `example.` and reads the answer.
fn knot_axfr(port: u16, key: &Arc<TsigKey>) -> (signet::xfr::tsig::RequestMac, Transfer) {
    let mut query = Message::query();
    query.add_query(hickory_proto::op::Query::query(dns_name("example."), hickory_proto::rr::RecordType::AXFR));
    let mut wire = query.to_vec().expect("encode query");
    let mac = signet::xfr::tsig::sign_request(&mut wire, key, now()).expect("sign query");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to knotd");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut framed = u16::try_from(wire.len()).expect("short query").to_be_bytes().to_vec();
    framed.extend_from_slice(&wire);
    stream.write_all(&framed).expect("send query");
    (mac, read_axfr(&mut stream).expect("read answer"))
}

fn verify_transfer(
    key: &Arc<TsigKey>,
    mac: &signet::xfr::tsig::RequestMac,
    messages: &[Vec<u8>],
) -> Result<(), signet::xfr::tsig::TsigError> {
    let mut verifier = signet::xfr::tsig::ResponseVerifier::new(key.clone(), mac);
    for message in messages {
        verifier.verify(message, now())?;
    }
    verifier.finish()
}

/// Waits until knotd transfers the zone (it loads it after it starts
/// listening).
fn first_good_axfr(knotd: &Knotd) -> (signet::xfr::tsig::RequestMac, Transfer) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", knotd.port)).is_ok() {
            let (mac, transfer) = knot_axfr(knotd.port, &key(SECRET));
            if transfer.records > 1 {
                return (mac, transfer);
            }
        }
        assert!(std::time::Instant::now() < deadline, "knotd did not serve example. within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn our_client_verifies_a_multi_message_axfr_from_knotd() {
    use signet::xfr::tsig::{TsigError, TsigRcode};
    if !common::have_tool("knotd") {
        return;
    }
    let knotd = start_knotd();
    let (mac, transfer) = first_good_axfr(&knotd);
    let right = key(SECRET);
    assert_eq!(transfer.records, TXT_RECORDS + 4, "SOA, NS, A, the TXT records, SOA");
    eprintln!("knotd sent {} records in {} messages", transfer.records, transfer.messages.len());
    assert!(transfer.messages.len() >= 3, "only {} messages", transfer.messages.len());
    assert_eq!(verify_transfer(&right, &mac, &transfer.messages), Ok(()));
    // A byte of a later message's data changed: that message's MAC fails.
    let mut tampered = transfer.messages.clone();
    let message = &mut tampered[1];
    let at = message.windows(8).position(|w| w == b"xxxxxxxx").expect("TXT data in message 2");
    message[at] = b'y';
    assert!(matches!(verify_transfer(&right, &mac, &tampered), Err(TsigError::BadSig { .. })));
    // Another secret: knotd answers NOTAUTH with BADSIG, which is reported.
    let other = key(OTHER_SECRET);
    let (mac, transfer) = knot_axfr(knotd.port, &other);
    let result = verify_transfer(&other, &mac, &transfer.messages);
    assert_eq!(result, Err(TsigError::Server { error: TsigRcode::BADSIG, server_time: None }));
}
