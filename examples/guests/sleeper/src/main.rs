//! `sleeper [SECONDS]`: sleeps `SECONDS` seconds (fractions allowed; default 3600) and exits 0.
//! Idle guests like this one measure how many sandboxes a node can hold at once.

use std::time::Duration;

fn main() {
    let secs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(3600.0);
    std::thread::sleep(Duration::from_secs_f64(secs));
    println!("slept {secs} s");
}
