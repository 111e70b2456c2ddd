//! signet's state in PostgreSQL (`--db postgres://…`): a real server of
//! the test's own (common/postgres.rs) on its own loopback address, with
//! a password that only PGPASSWORD carries.
//!
//! - A managed zone's life on PostgreSQL through the real binary: init,
//!   policy import, zone add, a first signing and an incremental one (the
//!   gate's memo and the journal stored as bytea), key list, status, zone
//!   diff; the output passes BIND's dnssec-verify; the state is in the
//!   server (psql reads it), no SQLite file is made; the password shows
//!   nowhere.
//! - What is refused, naming the database and never the password: a URL
//!   with a password, a wrong password, a database of another program's
//!   tables, an empty one that was not initialised.
//! - Two `signet serve` on PostgreSQL, NSD as the secondary with both as
//!   primaries, each on its own address; PostgreSQL stopped for a minute
//!   under them: no crash, nothing new is published while it is away, the
//!   zone is signed again and reaches NSD when it is back, and every
//!   serial either service published is a committed run.
//! - Three services sharing the state, each on its own address, NSD
//!   with all of them as primaries: the zone is signed by its lease's
//!   holder only; SIGKILL of the holder and another takes the zone within
//!   a lease period and publishes above it; a holder stalled past its
//!   lease (SIGSTOP) is replaced and, woken, publishes and commits
//!   nothing; NSD's serial never goes backwards, no key is made twice,
//!   the audit names every handover; `signet sign` is refused while a
//!   service holds the zone; a longer lease read on SIGHUP is the one
//!   the holder renews with.
//! - 300 zones over three services: each takes no more than its share;
//!   one killed, the others take its zones within a lease period (and
//!   the second their taking takes), and sign each of them again within
//!   a run more.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::dns_servers::{SerialWatch, free_addr, nsd_secondary_of_all, random_base, serial_ge, soa_serial};
use common::postgres::SignetOnPostgres as Env;
use common::serve::{Serve, wait_for};

const ZONE: &str = "example.";

/// How long PostgreSQL is away under a running service.
const OUTAGE: Duration = Duration::from_secs(60);

impl Env {
    /// init, the policy, and `example.` from `in.zone` to `out.zone`.
    fn managed_zone(&self) {
        std::fs::copy(common::realistic_zone(), self.path("in.zone")).expect("copy");
        std::fs::write(self.path("policy.toml"), common::steady_policy(&self.store, "unixtime")).expect("policy");
        self.ok(&["init"]);
        self.ok(&["policy", "import", &self.path("policy.toml"), "--name", "steady"]);
        let (input, output) = (self.path("in.zone"), self.path("out.zone"));
        self.ok(&["zone", "add", ZONE, "--policy", "steady", "--input", &input, "--output", &output]);
    }

    fn append_to_input(&self, line: &str) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().append(true).open(self.path("in.zone")).expect("open input");
        writeln!(file, "{line}").expect("append");
    }
}

#[test]
fn postgres_holds_a_managed_zone() {
    if !common::have_tool("dnssec-verify") {
        return;
    }
    let env = Env::new(&random_base());
    env.managed_zone();
    let now = signet::time::wall_clock();

    let first = env.json(&["--now", &now.to_string(), "sign", ZONE]);
    assert!(first["stats"]["serial"].as_u64().is_some(), "{first}");
    let verified = common::bind_verify(Path::new(&env.path("out.zone")), ZONE);
    common::expect_success("dnssec-verify", &verified);

    env.append_to_input("added-on-postgres 3600 IN TXT \"one more\"");
    let second = env.json(&["--now", &(now + 60).to_string(), "sign", ZONE]);
    assert!(second["stats"]["serial"].as_u64() > first["stats"]["serial"].as_u64(), "{second}");
    let from_memo = second["verified"]["rrsigs_from_memo"].as_u64().unwrap_or(0);
    assert!(from_memo > 0, "the second gate took nothing from the memo stored in PostgreSQL: {second}");
    common::expect_success("dnssec-verify", &common::bind_verify(Path::new(&env.path("out.zone")), ZONE));

    let diff = env.ok(&["zone", "diff", ZONE]);
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(diff.contains("added-on-postgres"), "the journal's difference lacks the record added:\n{diff}");
    let keys = env.json(&["key", "list", ZONE]);
    assert_eq!(keys[0]["keys"].as_array().map(Vec::len), Some(2), "{keys}");
    let status = env.json(&["status", ZONE]);
    assert_eq!(status[0]["published_serial"], second["stats"]["serial"], "{status}");
    assert_eq!(status[0]["last_run"]["result"], "published", "{status}");

    // The state is the server's: psql reads the two runs and the journal
    // no SQLite file appeared anywhere in the test's directory.
    assert_eq!(env.pg.query("signet", "SELECT count(*) FROM runs WHERE result = 'published'"), "2");
    assert_eq!(env.pg.query("signet", "SELECT count(*) FROM journal"), "1", "the journal holds the one difference");
    let sqlite: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".db"))
        .map(|e| e.file_name())
        .collect();
    assert!(sqlite.is_empty(), "SQLite files made beside a PostgreSQL state: {sqlite:?}");
}

#[test]
fn postgres_refuses_what_is_not_signets_and_never_shows_the_password() {
    let env = Env::new(&random_base());
    let password = env.pg.password().to_owned();

    let with_password = env.url.replacen("signet@", &format!("signet:{password}@"), 1);
    let output = common::run(env.store.signet().args(["--db", &with_password, "zone", "list"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("PGPASSWORD"), "{stderr}");
    assert!(!stderr.contains(&password), "the password shows:\n{stderr}");

    let mut wrong = env.command(&["zone", "list"]);
    wrong.env("PGPASSWORD", "not-the-password");
    let output = common::run(&mut wrong);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a wrong password was let in");
    assert!(stderr.contains(&env.url) && stderr.contains("password authentication failed"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "the password shows:\n{stderr}");

    let output = env.signet(&["zone", "list"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("holds no tables"), "{stderr}");

    let other = env.pg.database("other");
    env.pg.query("other", "CREATE TABLE customers (id BIGINT)");
    let mut init = env.store.on_db(Path::new(&other), &["init"]);
    init.env("PGPASSWORD", env.pg.password());
    let output = common::run(&mut init);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("another program's tables: customers"), "{stderr}");
    assert_eq!(env.pg.query("other", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "1");
}

#[test]
fn serve_on_postgres_survives_the_database_going_away() {
    if !common::have_tool("nsd") {
        return;
    }
    let base = random_base();
    let mut env = Env::new(&base);
    env.managed_zone();
    let (first_at, second_at, nsd_addr) = (free_addr(base(2)), free_addr(base(4)), free_addr(base(3)));
    env.ok(&["zone", "secondary", "add", ZONE, &nsd_addr.to_string()]);
    let nsd = nsd_secondary_of_all(nsd_addr, &env.dir.path().join("nsd"), ZONE, &[first_at, second_at]);
    let serve_at = |addr: std::net::SocketAddr, label: &str| {
        let command = env.command(&["serve", "--listen", &addr.to_string()]);
        Serve::start(command, label, Some(env.dir.path().join(format!("serve-{label}.log"))))
    };
    let first = serve_at(first_at, "first");
    let serial = wait_for(Duration::from_secs(60), || soa_serial(nsd.addr(), ZONE))
        .unwrap_or_else(|_| panic!("NSD gets nothing from serve on PostgreSQL: {}", first.tail()));
    let output = Path::new(&env.path("out.zone")).to_owned();
    wait_for(Duration::from_secs(30), || (common::published_serial(&output) >= u64::from(serial)).then_some(()))
        .unwrap_or_else(|_| panic!("no output file: {}", first.tail()));
    let second = serve_at(second_at, "second");
    second.wait_log(&["zones signed by lease"], Duration::from_secs(30));

    // PostgreSQL goes away for a minute under both running services,
    // which see the input change meanwhile. What is published once they
    // noticed (a run just committed may still write its file) must stay.
    env.pg.stop();
    for serve in [&first, &second] {
        serve.wait_log(&["cannot read the zones from the database"], Duration::from_secs(60));
    }
    let (published, served) = (common::published_serial(&output), soa_serial(nsd.addr(), ZONE));
    assert!(published >= u64::from(serial), "{published} < {serial}");
    env.append_to_input("while-the-database-was-away 3600 IN TXT \"later\"");
    std::thread::sleep(OUTAGE);
    let (mut first, mut second) = (first, second);
    for serve in [&mut first, &mut second] {
        assert!(serve.running(), "serve ended when PostgreSQL went away: {}", serve.tail());
    }
    assert_eq!(common::published_serial(&output), published, "published while the database was away");
    assert_eq!(soa_serial(nsd.addr(), ZONE), served, "a version reached NSD while the database was away");
    let serial = u32::try_from(published).expect("a serial");
    env.pg.restart();

    // Back: the change is signed, committed and transferred, by whichever
    // service takes the lease (both expired while the database was away).
    env.ok(&["zone", "reload", ZONE]);
    let tails = || format!("{}\n{}", first.tail(), second.tail());
    let newer = wait_for(Duration::from_secs(120), || soa_serial(nsd.addr(), ZONE).filter(|s| *s != serial))
        .unwrap_or_else(|_| panic!("nothing reached NSD after PostgreSQL came back: {}", tails()));
    // The output file is written after the version is served.
    wait_for(Duration::from_secs(30), || (common::published_serial(&output) >= u64::from(newer)).then_some(()))
        .unwrap_or_else(|_| panic!("the output file stays behind {newer}: {}", tails()));
    let runs = env.pg.query("signet", &format!("SELECT count(*) FROM runs WHERE serial = {newer}"));
    assert_eq!(runs, "1", "the version served after the outage is not committed");
    // No publication without a commit: every serial either service says
    // it published is a run in the database.
    let committed = env.pg.query("signet", "SELECT string_agg(serial::text, ' ') FROM runs WHERE result = 'published'");
    let committed: Vec<&str> = committed.split_whitespace().collect();
    for serve in [&first, &second] {
        for line in serve.lines().iter().filter(|l| l.contains("zone published")) {
            let serial = line.split_whitespace().find_map(|w| w.strip_prefix("serial=")).unwrap_or("?");
            assert!(committed.contains(&serial), "published {serial}, not committed ({committed:?}): {line}");
        }
    }
    first.stop();
    second.stop();
}

/// The lease of the services sharing the state in `two_services_…`.
const LEASE: Duration = Duration::from_secs(6);

/// The zone's lease as `signet status` shows it: holder, fencing, live.
fn lease(env: &Env) -> (String, i64, bool) {
    let status = env.json(&["status", ZONE]);
    let lease = &status[0]["lease"];
    (
        lease["holder"].as_str().unwrap_or_default().to_owned(),
        lease["fencing"].as_i64().unwrap_or(0),
        lease["live"].as_bool().unwrap_or(false),
    )
}

#[test]
fn two_services_share_a_zone_by_lease() {
    if !common::have_tool("nsd") {
        return;
    }
    let base = random_base();
    let env = Env::new(&base);
    env.managed_zone();
    let config = env.path("serve.toml");
    let text = format!("[serve]\nlease = \"{}s\"\nretry-min = \"1s\"\nretry-max = \"2s\"\n", LEASE.as_secs());
    std::fs::write(&config, text).expect("config");
    let (a, b, c, nsd_addr) = (free_addr(base(2)), free_addr(base(3)), free_addr(base(4)), free_addr(base(5)));
    env.ok(&["zone", "secondary", "add", ZONE, &nsd_addr.to_string()]);
    let nsd = nsd_secondary_of_all(nsd_addr, &env.dir.path().join("nsd"), ZONE, &[a, b, c]);
    let serve_at = |addr: std::net::SocketAddr, label: &str| {
        let command = env.command(&["serve", "--config", &config, "--listen", &addr.to_string()]);
        Serve::start(command, label, Some(env.dir.path().join(format!("serve-{label}.log"))))
    };

    // The first service takes the zone, signs it, NSD follows.
    let mut first = serve_at(a, "first");
    let s1 = wait_for(Duration::from_secs(60), || soa_serial(nsd.addr(), ZONE))
        .unwrap_or_else(|_| panic!("NSD gets nothing: {}", first.tail()));
    let watch = SerialWatch::start(nsd.addr(), ZONE);
    let (holder, f1, live) = lease(&env);
    assert!(live && holder.ends_with(&format!("/{}", first.pid)), "lease {holder} (fencing {f1})");

    // A second service shares the state and leaves the zone to the first
    // for as long as the first renews its lease.
    let second = serve_at(b, "second");
    second.wait_log(&["zones signed by lease"], Duration::from_secs(30));
    std::thread::sleep(LEASE * 2);
    assert_eq!(lease(&env).0, holder, "the second service took a lease the first renews");
    assert_eq!(second.count(&["run started"]), 0, "the second service signed a zone it does not hold");
    // A run from the command line is refused while a service holds it.
    let refused = env.signet(&["sign", ZONE]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("holds the zone's lease"), "{stderr}");

    // The first dies: the second takes the zone within a lease period
    // (it looks again when the lease expires), continues from the stored
    // state, and
    // publishes above anything the first published.
    first.kill_9();
    let killed = std::time::Instant::now();
    let took = wait_for(LEASE * 3, || lease(&env).0.ends_with(&format!("/{}", second.pid)).then(|| killed.elapsed()))
        .unwrap_or_else(|_| panic!("no takeover: {:?}\n{}", lease(&env), second.tail()));
    assert!(took <= LEASE + Duration::from_secs(1), "takeover after {took:?}, lease {LEASE:?}");
    env.append_to_input("after-the-takeover 3600 IN TXT \"second\"");
    let s2 =
        wait_for(Duration::from_secs(60), || soa_serial(nsd.addr(), ZONE).filter(|s| serial_ge(*s, s1) && *s != s1))
            .unwrap_or_else(|_| panic!("nothing published after the takeover: {}", second.tail()));
    let (_, f2, _) = lease(&env);
    assert!(f2 > f1, "fencing {f2} after {f1}");

    // The second stalls past its lease (SIGSTOP); a third service takes
    // the zone; the second wakes (SIGCONT), finds its lease gone, and
    // publishes and commits nothing more.
    second.signal("STOP");
    let third = serve_at(c, "third");
    wait_for(LEASE * 4, || lease(&env).0.ends_with(&format!("/{}", third.pid)).then_some(()))
        .unwrap_or_else(|_| panic!("no takeover from the stalled service: {:?}\n{}", lease(&env), third.tail()));
    let published_before = second.count(&["zone published"]);
    env.append_to_input("while-the-second-slept 3600 IN TXT \"third\"");
    // NSD may be waiting on the stalled service (it is one of its
    // primaries): the third's publication is read from the database.
    let newest = || env.pg.query("signet", "SELECT COALESCE(max(serial), 0) FROM runs WHERE result = 'published'");
    let s3 =
        wait_for(Duration::from_secs(60), || newest().parse::<u32>().ok().filter(|s| serial_ge(*s, s2) && *s != s2))
            .unwrap_or_else(|_| panic!("the third service publishes nothing: {}", third.tail()));
    second.signal("CONT");
    second.wait_log(&["lease lost"], LEASE * 2);
    wait_for(Duration::from_secs(120), || soa_serial(nsd.addr(), ZONE).filter(|s| serial_ge(*s, s3)))
        .unwrap_or_else(|_| panic!("NSD does not reach the third service's {s3}: {}", nsd.describe()));
    assert_eq!(second.count(&["zone published"]), published_before, "the stalled service published after waking");
    let committed_after = env.pg.query("signet", &format!("SELECT count(*) FROM runs WHERE serial > {s3}"));
    assert_eq!(committed_after, "0", "a run committed above the third service's version");

    let seen = watch.finish();
    assert!(seen.contains(&s2), "NSD's serials: {seen:?}");
    let keys = env.json(&["key", "list", ZONE]);
    assert_eq!(keys[0]["keys"].as_array().map(Vec::len), Some(2), "a key was made twice: {keys}");
    let audit = String::from_utf8_lossy(&env.ok(&["zone", "status", ZONE, "--audit", "100"]).stdout).into_owned();
    let handovers = audit.lines().filter(|l| l.contains("took the zone's lease")).count();
    assert!(handovers >= 3, "the audit names {handovers} handovers:\n{audit}");

    // SIGHUP with a longer lease: the holder's next renewal uses it.
    let longer = LEASE * 4;
    let text = format!("[serve]\nlease = \"{}s\"\nretry-min = \"1s\"\nretry-max = \"2s\"\n", longer.as_secs());
    std::fs::write(&config, text).expect("config");
    third.signal("HUP");
    let expires_in = || {
        let status = env.json(&["status", ZONE]);
        status[0]["lease"]["expires"].as_i64().unwrap_or(0) - signet::time::wall_clock()
    };
    let beyond = i64::try_from(LEASE.as_secs()).expect("seconds") + 2;
    wait_for(LEASE * 2, || (expires_in() > beyond).then_some(()))
        .unwrap_or_else(|_| panic!("the lease expires in {} s after SIGHUP: {}", expires_in(), third.tail()));
    second.stop();
    third.stop();
}

/// Zones of the scale-out test, and the services sharing them.
const MANY_ZONES: usize = 300;
const SERVICES: usize = 3;

/// The database's clock in milliseconds, as psql writes SQL.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Live leases by holder: (holder, zones held), most first.
fn leases_by_holder(env: &Env) -> Vec<(String, usize)> {
    let sql = format!(
        "SELECT holder || '|' || count(*) FROM zone_leases WHERE expires_at > {DB_NOW_MS} GROUP BY holder ORDER BY count(*) DESC, holder"
    );
    let text = env.pg.query("signet", &sql);
    text.lines()
        .filter_map(|line| line.split_once('|'))
        .map(|(holder, count)| (holder.to_owned(), count.parse().unwrap_or(0)))
        .collect()
}

#[test]
fn three_services_share_many_zones_and_take_a_dead_ones() {
    let base = random_base();
    let env = Env::new(&base);
    std::fs::write(env.path("policy.toml"), common::steady_policy(&env.store, "unixtime")).expect("policy");
    env.ok(&["init"]);
    env.ok(&["policy", "import", &env.path("policy.toml"), "--name", "steady"]);
    for i in 0..MANY_ZONES {
        let zone = format!("z{i}.test.");
        let text = format!(
            "$ORIGIN {zone}\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.{}\n",
            i % 250 + 1
        );
        let (input, output) = (env.path(&format!("{zone}zone")), env.path(&format!("{zone}signed")));
        std::fs::write(&input, text).expect("zone");
        env.ok(&["zone", "add", &zone, "--policy", "steady", "--input", &input, "--output", &output]);
    }
    let config = env.path("serve.toml");
    std::fs::write(&config, format!("[serve]\nlease = \"{}s\"\n", LEASE.as_secs())).expect("config");
    let mut services: Vec<Serve> = (0..SERVICES)
        .map(|i| {
            let command = env.command(&["serve", "--config", &config]);
            Serve::start(command, &format!("s{i}"), Some(env.dir.path().join(format!("serve-s{i}.log"))))
        })
        .collect();

    // Every zone signed; the zones spread, none above its fair share.
    let signed = || env.pg.query("signet", "SELECT count(*) FROM zones WHERE last_serial IS NOT NULL");
    wait_for(Duration::from_secs(300), || (signed() == MANY_ZONES.to_string()).then_some(()))
        .unwrap_or_else(|_| panic!("{} of {MANY_ZONES} zones signed: {}", signed(), services[0].tail()));
    let share = MANY_ZONES.div_ceil(SERVICES);
    let spread = wait_for(LEASE * 4, || {
        let held = leases_by_holder(&env);
        (held.len() == SERVICES
            && held.iter().all(|(_, n)| *n <= share)
            && held.iter().map(|(_, n)| n).sum::<usize>() == MANY_ZONES)
            .then_some(held)
    })
    .unwrap_or_else(|_| panic!("the zones do not spread over {SERVICES} services: {:?}", leases_by_holder(&env)));

    // One service dies: its zones go to the others within a lease period,
    // and each is signed by its new holder within a run more.
    let (victim, held) = spread[0].clone();
    let index = services.iter().position(|s| victim.ends_with(&format!("/{}", s.pid))).expect("the victim runs");
    let orphans = env
        .pg
        .query("signet", &format!("SELECT string_agg(zone_id::text, ',') FROM zone_leases WHERE holder = '{victim}'"));
    services[index].kill_9();
    let killed = std::time::Instant::now();
    // Dead, it commits nothing more; its zones' leases have not expired.
    let before = env.pg.query("signet", "SELECT max(id) FROM runs");
    let taken = wait_for(LEASE * 3, || {
        let left = env.pg.query("signet", &format!("SELECT count(*) FROM zone_leases WHERE holder = '{victim}'"));
        (left == "0").then(|| killed.elapsed())
    })
    .unwrap_or_else(|_| panic!("the dead service's zones are not taken: {:?}", leases_by_holder(&env)));
    // A lease period, and the transaction that takes them.
    assert!(taken <= LEASE + Duration::from_secs(2), "taken after {taken:?}, lease {LEASE:?}");
    let resigned = format!(
        "SELECT count(DISTINCT zone_id) FROM runs WHERE result = 'published' AND id > {before} AND zone_id IN ({orphans})"
    );
    let all_signed = wait_for(Duration::from_secs(120), || {
        (env.pg.query("signet", &resigned) == held.to_string()).then(|| killed.elapsed())
    })
    .unwrap_or_else(|_| {
        let tails: Vec<String> = services.iter().map(Serve::tail).collect();
        panic!(
            "{} of the dead service's {held} zones signed again:\n{}",
            env.pg.query("signet", &resigned),
            tails.join("\n")
        )
    });
    eprintln!(
        "{held} zones of the killed service: leases taken after {taken:?}, all signed again after {all_signed:?}"
    );
    // A lease period and one run of each zone (half of them on each
    // survivor, a few at a time); room for a busy machine.
    assert!(all_signed <= LEASE + Duration::from_secs(6), "signed again after {all_signed:?}, lease {LEASE:?}");
    let survivors = leases_by_holder(&env);
    assert_eq!(survivors.len(), SERVICES - 1, "{survivors:?}");
    for service in services.into_iter().enumerate().filter(|(i, _)| *i != index).map(|(_, s)| s) {
        service.stop();
    }
}
