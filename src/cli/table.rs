//! Aligned text tables, for output read at 3 a.m.

/// Formats rows (the first is the header) in columns two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
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

/// `2026-11-22 09:00Z`: a UTC date and minute.
pub fn when(unix: i64) -> String {
    let full = crate::time::format_time(unix);
    format!("{} {}Z", &full[..10], &full[11..16])
}
