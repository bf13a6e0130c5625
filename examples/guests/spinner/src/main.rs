//! `spinner [SECONDS]`: burns CPU for `SECONDS` seconds of wall time (fractions allowed), or
//! forever when no argument is given. The clock is read only every few hundred thousand
//! iterations so that almost all the time is spent in plain Wasm code.

use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let limit = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let start = Instant::now();
    let mut table = [0u64; 256];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rounds: u64 = 0;
    loop {
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let slot = (state >> 56) as usize;
            table[slot] ^= state;
        }
        black_box(&mut table);
        rounds += 1;
        if limit.is_some_and(|l| start.elapsed() >= l) {
            break;
        }
    }
    println!(
        "spun {rounds} rounds, checksum {:x}",
        table.iter().fold(0, |a, b| a ^ b)
    );
}
