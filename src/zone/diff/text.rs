//! A diff as text for people: master-file lines (the zone writer's, one
//! record per line, absolute names) in IXFR order, either prefixed `-`
//! and `+`, or as two sections each a master file of its own.

use std::io::{self, Write};

use super::ZoneDiff;
use crate::zone::arena::RecordRef;
use crate::zone::writer::write_record;

/// How [`ZoneDiff::write_text`] lays a diff out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextStyle {
    /// One list in IXFR order (old SOA, removed, new SOA, added), each
    /// line `- ` or `+ ` then the record, like a unified diff.
    #[default]
    Prefixed,
    /// Two sections, removed then added, under a comment each; every line
    /// a record as a zone file holds it, for tools that read master files.
    Sections,
}

impl ZoneDiff<'_> {
    /// Writes the diff as text: a comment line naming the zone, the serials
    /// and the counts, then the records as `style` lays them out.
    pub fn write_text(&self, style: TextStyle, out: &mut impl Write) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        writeln!(
            out,
            "; zone {} serial {} -> {}: {} removed, {} added",
            self.origin,
            self.old_serial,
            self.new_serial,
            self.removed_len(),
            self.added_len()
        )?;
        let (minus, plus) = match style {
            TextStyle::Prefixed => ("- ", "+ "),
            TextStyle::Sections => ("", ""),
        };
        if style == TextStyle::Sections {
            writeln!(out, "; removed from serial {}", self.old_serial)?;
        }
        self.write_lines(self.removed(), minus, &mut out)?;
        if style == TextStyle::Sections {
            writeln!(out, "; added in serial {}", self.new_serial)?;
        }
        self.write_lines(self.added(), plus, &mut out)?;
        out.flush()
    }

    /// Each record as one line after `prefix`.
    fn write_lines<'r>(
        &self,
        records: impl Iterator<Item = RecordRef<'r>>,
        prefix: &str,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let mut line = String::with_capacity(512);
        for record in records {
            line.clear();
            line.push_str(prefix);
            write_record(record, self.class, &mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// The records of each section as master-file lines (no prefix), in
    /// IXFR order: `(removed, added)`, for JSON output.
    pub fn lines(&self) -> (Vec<String>, Vec<String>) {
        let lines = |records: &mut dyn Iterator<Item = RecordRef<'_>>| -> Vec<String> {
            records
                .map(|record| {
                    let mut line = String::new();
                    write_record(record, self.class, &mut line);
                    line
                })
                .collect()
        };
        (lines(&mut self.removed()), lines(&mut self.added()))
    }
}
