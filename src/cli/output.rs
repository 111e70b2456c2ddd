//! What the commands print in common: aligned text tables, for output
//! read at 3 a.m., and the key table of `key list` and `zone status`.

use signet::manage::KeyLine;
use signet::time::format_minute;

/// Formats rows (the first is the header) in columns two spaces apart.
pub(super) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> =
            row.iter().enumerate().map(|(c, cell)| format!("{cell:<width$}", width = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A time, or `none` for one that has not come.
pub(super) fn when_or(time: Option<i64>, none: &str) -> String {
    time.map_or_else(|| none.to_owned(), format_minute)
}

/// A size in bytes as people read it: `812 B`, `12.3 KiB`, `256.0 MiB`.
pub(super) fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `key list` for one zone, as a table, then each record's next move and
/// the operator's TODOs.
pub(super) fn print_keys(lines: &[KeyLine]) -> std::io::Result<()> {
    let mut rows =
        vec![["ID", "ROLE", "ALG", "TAG", "GOAL", "DNSKEY", "KRRSIG", "ZRRSIG", "DS"].map(String::from).to_vec()];
    for line in lines {
        let cell = |record: &str| match (line.states.get(record), line.since.get(record)) {
            (Some(state), Some(since)) => format!("{state} {}", format_minute(*since)),
            _ => "-".to_owned(),
        };
        rows.push(vec![
            line.id.to_string(),
            line.role.to_owned(),
            line.algorithm.to_string(),
            line.keytag.to_string(),
            line.goal.to_owned(),
            cell("dnskey"),
            cell("krrsig"),
            cell("zrrsig"),
            cell("ds"),
        ]);
    }
    out!("{}", table(&rows))?;
    for line in lines {
        for (record, next) in &line.next {
            if next != "-" {
                outln!("  key {} ({} {}) {record}: next {next}", line.id, line.role, line.keytag)?;
            }
        }
        for todo in &line.todo {
            outln!("  key {} ({} {}): TODO {todo}", line.id, line.role, line.keytag)?;
        }
    }
    Ok(())
}

/// Who takes up an operator request: the running service, or the next
/// `signet sign`.
pub(super) async fn taken_up_by(db: &signet::db::Database, name: &signet::zone::Name) -> String {
    match db.service().await {
        Ok(Some((pid, _))) => format!("signet serve (pid {pid}) takes it up within seconds"),
        _ => format!("the next `signet sign {name}` takes it up"),
    }
}
