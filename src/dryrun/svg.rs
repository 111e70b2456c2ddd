//! The dry-run timeline as SVG: one lane per key, one bar per record the
//! key affects (DNSKEY, its RRSIGs over the DNSKEY RRset or over the zone,
//! its DS at the parent), coloured by state; a date axis; rollovers, DS
//! requests, parent changes and policy changes marked above the lanes; a
//! legend. Plain SVG 1.1 with `<title>` tooltips: any browser shows it.

use std::fmt::Write as _;

use super::{Event, EventKind, KeyInfo, state_history};
use crate::rollover::{Record, RecordState};
use crate::time::{civil_from_days, days_from_civil, format_time};

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 30.0;
const AXIS_Y: f64 = 56.0;
const MARKS_Y: f64 = 74.0;
const LANES_Y: f64 = 96.0;
const ROW: f64 = 11.0;
const ROW_GAP: f64 = 3.0;
const LANE_PAD: f64 = 9.0;
const DAY: i64 = 86_400;

/// The colour of a state; `None` for hidden (not drawn).
fn colour(state: RecordState) -> Option<&'static str> {
    match state {
        RecordState::Hidden => None,
        RecordState::Rumoured => Some("#e9b44c"),
        RecordState::Omnipresent => Some("#3a8d5c"),
        RecordState::Unretentive => Some("#c8553d"),
    }
}

/// The rows a key's lane has.
fn rows(key: &KeyInfo) -> Vec<(Record, &'static str)> {
    match key.role.as_str() {
        "ksk" => vec![(Record::Dnskey, "DNSKEY"), (Record::Krrsig, "RRSIG (keys)"), (Record::Ds, "DS")],
        "zsk" => vec![(Record::Dnskey, "DNSKEY"), (Record::Zrrsig, "RRSIG (zone)")],
        _ => vec![
            (Record::Dnskey, "DNSKEY"),
            (Record::Krrsig, "RRSIG (keys)"),
            (Record::Zrrsig, "RRSIG (zone)"),
            (Record::Ds, "DS"),
        ],
    }
}

/// Maps time to x.
struct Scale {
    from: i64,
    until: i64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let span = (self.until - self.from).max(1) as f64;
        LEFT + (t.clamp(self.from, self.until) - self.from) as f64 / span * (WIDTH - LEFT - RIGHT)
    }
}

/// Draws the timeline of `keys` (in lane order) from `events`, over
/// `from`..`until`; `title` heads it.
pub fn timeline(title: &str, keys: &[KeyInfo], events: &[Event], from: i64, until: i64) -> String {
    let scale = Scale { from, until };
    let lanes_height: f64 = keys.iter().map(lane_height).sum();
    let legend_y = LANES_Y + lanes_height + 16.0;
    let height = legend_y + 48.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="12" y="24" font-size="16" font-weight="bold">{}</text>"#, escape(title));
    let mut y = LANES_Y;
    for (n, key) in keys.iter().enumerate() {
        let fill = if n % 2 == 1 { "#f3f5f8" } else { "#ffffff" };
        let _ = writeln!(svg, r#"<rect x="0" y="{y}" width="{WIDTH}" height="{}" fill="{fill}"/>"#, lane_height(key));
        y += lane_height(key);
    }
    axis(&mut svg, &scale, LANES_Y + lanes_height);
    let mut y = LANES_Y;
    for key in keys {
        lane(&mut svg, &scale, key, events, y);
        y += lane_height(key);
    }
    markers(&mut svg, &scale, keys, events, LANES_Y + lanes_height);
    legend(&mut svg, legend_y);
    svg.push_str("</svg>\n");
    svg
}

fn lane_height(key: &KeyInfo) -> f64 {
    rows(key).len() as f64 * (ROW + ROW_GAP) + 2.0 * LANE_PAD
}

/// A key's lane (its background is drawn first, under the date grid).
fn lane(svg: &mut String, scale: &Scale, key: &KeyInfo, events: &[Event], top: f64) {
    let _ = writeln!(svg, r#"<g class="lane" data-key="{}">"#, key.id);
    let _ = writeln!(
        svg,
        r##"<text x="10" y="{:.1}" font-weight="bold">{}</text><text x="10" y="{:.1}" fill="#555">key {}</text>"##,
        top + LANE_PAD + 9.0,
        escape(&key.label()),
        top + LANE_PAD + 22.0,
        key.id
    );
    let history = state_history(events, key.id);
    let end = events.iter().filter(|e| e.key == Some(key.id) && e.kind == EventKind::KeyRemoved).map(|e| e.time);
    let end = end.min().unwrap_or(scale.until);
    for (row, (record, name)) in rows(key).into_iter().enumerate() {
        let y = top + LANE_PAD + row as f64 * (ROW + ROW_GAP);
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="9" fill="#555">{name}</text>"##,
            LEFT - 6.0,
            y + ROW - 2.0
        );
        let changes: Vec<(i64, RecordState)> =
            history.iter().filter(|(r, _, _)| *r == record).map(|&(_, t, s)| (t, s)).collect();
        for (i, &(since, state)) in changes.iter().enumerate() {
            let until = changes.get(i + 1).map_or(end, |&(t, _)| t);
            let Some(fill) = colour(state) else { continue };
            let (x0, x1) = (scale.x(since), scale.x(until));
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{ROW}" fill="{fill}"><title>{} {name}: {} from {} until {}</title></rect>"#,
                (x1 - x0).max(1.0),
                escape(&key.label()),
                state.as_str(),
                format_time(since),
                format_time(until)
            );
        }
    }
    svg.push_str("</g>\n");
}

/// Month ticks (or days, for short runs) with dates.
fn axis(svg: &mut String, scale: &Scale, bottom: f64) {
    let span_days = (scale.until - scale.from) / DAY;
    let _ = writeln!(svg, r##"<line x1="{LEFT}" y1="{AXIS_Y}" x2="{}" y2="{AXIS_Y}" stroke="#333"/>"##, WIDTH - RIGHT);
    let ticks: Vec<i64> =
        if span_days <= 62 { day_ticks(scale, if span_days <= 14 { 1 } else { 7 }) } else { month_ticks(scale) };
    let label_every = match span_days {
        0..=400 => 1,
        401..=800 => 2,
        _ => 3,
    };
    for (i, &t) in ticks.iter().enumerate() {
        let x = scale.x(t);
        let _ = writeln!(svg, r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#d8dde3"/>"##, AXIS_Y);
        if i % label_every == 0 {
            let text = &format_time(t)[..if span_days <= 62 { 10 } else { 7 }];
            // A label at the right edge ends at its tick rather than past the drawing.
            let anchor = if x > WIDTH - RIGHT - 30.0 { "end" } else { "middle" };
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="{anchor}" font-size="10">{text}</text>"#,
                AXIS_Y - 6.0
            );
        }
    }
}

fn day_ticks(scale: &Scale, every: i64) -> Vec<i64> {
    let first = (scale.from + DAY - 1).div_euclid(DAY) * DAY;
    (0..).map(|i| first + i * every * DAY).take_while(|&t| t <= scale.until).collect()
}

/// The first instant of every month within the run.
fn month_ticks(scale: &Scale) -> Vec<i64> {
    let (mut year, mut month, _) = civil_from_days(scale.from.div_euclid(DAY));
    let mut ticks = Vec::new();
    loop {
        let t = days_from_civil(year, month, 1) * DAY;
        if t > scale.until {
            return ticks;
        }
        if t >= scale.from {
            ticks.push(t);
        }
        (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    }
}

/// Marks above the lanes: ▲ a key made (a rollover starts), ◆ a DS
/// request or a parent change, ■ a policy change (also drawn across the
/// lanes).
fn markers(svg: &mut String, scale: &Scale, keys: &[KeyInfo], events: &[Event], bottom: f64) {
    let label = |id: Option<i64>| {
        id.and_then(|id| keys.iter().find(|k| k.id == id)).map_or_else(String::new, |k| format!("{}: ", k.label()))
    };
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="9" fill="#555">events</text>"##,
        LEFT - 6.0,
        MARKS_Y + 4.0
    );
    for event in events {
        let x = scale.x(event.time);
        let tip = format!("{} {}{}", format_time(event.time), label(event.key), event.why);
        let shape = match event.kind {
            EventKind::KeyCreated => {
                format!(r##"<path d="M{:.1} {:.1} l5 8 h-10 z" fill="#2f5d8a"/>"##, x, MARKS_Y - 4.0)
            }
            EventKind::DsRequested | EventKind::Parent => {
                format!(r##"<path d="M{x:.1} {:.1} l4 4 l-4 4 l-4 -4 z" fill="#7a4fa0"/>"##, MARKS_Y - 4.0)
            }
            EventKind::PolicyChange => format!(
                r##"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="#b03060"/><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom}" stroke="#b03060" stroke-dasharray="4 3"/>"##,
                x - 4.0,
                MARKS_Y - 4.0,
                MARKS_Y + 4.0
            ),
            // A ceremony of the offline KSK: a response signed or imported.
            EventKind::Offline => format!(
                r##"<circle cx="{x:.1}" cy="{:.1}" r="4" fill="#2e8b57"/><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom}" stroke="#2e8b57" stroke-dasharray="2 3"/>"##,
                MARKS_Y,
                MARKS_Y + 4.0
            ),
            EventKind::Transition
            | EventKind::KeyRemoved
            | EventKind::KeyPurged
            | EventKind::Fault
            | EventKind::DsSeen
            | EventKind::DsGone
            | EventKind::Rollover
            | EventKind::Compromised
            | EventKind::ZoneAdded
            | EventKind::ZoneRemoved
            | EventKind::Transfers
            | EventKind::Lease
            | EventKind::Run => continue,
        };
        let _ = writeln!(svg, r#"<g class="marker">{shape}<title>{}</title></g>"#, escape(&tip));
    }
}

fn legend(svg: &mut String, y: f64) {
    let mut x = LEFT;
    let _ = writeln!(svg, r#"<g class="legend">"#);
    for state in [RecordState::Rumoured, RecordState::Omnipresent, RecordState::Unretentive] {
        let fill = colour(state).unwrap_or("none");
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{y}" width="18" height="{ROW}" fill="{fill}"/><text x="{}" y="{}">{}</text>"#,
            x + 24.0,
            y + 9.5,
            state.as_str()
        );
        x += 120.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{x}" y="{y}" width="18" height="{ROW}" fill="none" stroke="#999"/><text x="{}" y="{}">hidden (not drawn)</text>"##,
        x + 24.0,
        y + 9.5
    );
    let y2 = y + 24.0;
    let _ = writeln!(
        svg,
        r##"<path d="M{LEFT} {y2} l5 8 h-10 z" fill="#2f5d8a"/><text x="{}" y="{}">key made (rollover starts)</text>"##,
        LEFT + 12.0,
        y2 + 8.0
    );
    let _ = writeln!(
        svg,
        r##"<path d="M{} {y2} l4 4 l-4 4 l-4 -4 z" fill="#7a4fa0"/><text x="{}" y="{}">DS asked for (CDS) / parent changed the DS</text>"##,
        LEFT + 220.0,
        LEFT + 232.0,
        y2 + 8.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{}" y="{y2}" width="8" height="8" fill="#b03060"/><text x="{}" y="{}">policy changed</text>"##,
        LEFT + 520.0,
        LEFT + 534.0,
        y2 + 8.0
    );
    svg.push_str("</g>\n");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lane_per_key() {
        let keys = [
            KeyInfo { id: 1, role: "ksk".into(), algorithm: 13, tag: 1, predecessor: None },
            KeyInfo { id: 2, role: "zsk".into(), algorithm: 13, tag: 2, predecessor: None },
        ];
        let events = [Event {
            time: 100,
            actor: crate::db::Actor::Machine,
            kind: EventKind::Transition,
            key: Some(2),
            record: Some(Record::Dnskey),
            from: Some(RecordState::Hidden),
            to: Some(RecordState::Rumoured),
            why: "publish <new>".into(),
        }];
        let svg = timeline("t & t", &keys, &events, 0, 400 * DAY);
        assert_eq!(svg.matches(r#"<g class="lane""#).count(), 2);
        assert!(svg.contains("t &amp; t") && svg.contains("#e9b44c"));
    }
}
