use super::*;
use crate::zone::read_zone_str;

fn name(text: &str) -> Name {
    Name::from_text(text, None).expect("name")
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
fn retries_start_short_and_grow_to_the_soa_retry() {
    let retry = Duration::from_secs(600);
    let waits: Vec<u64> = (0..12).map(|n| retry_after(n, retry).as_secs()).collect();
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
    assert_eq!(retry_after(u32::MAX, retry), retry);
    assert_eq!(retry_after(3, Duration::from_secs(5)), Duration::from_secs(5));
}
