//! `chatter [LINES] [INTERVAL_MS] [EXIT_CODE]`: writes `LINES` numbered lines to stdout
//! (forever when `LINES` is 0; default 10), sleeping `INTERVAL_MS` milliseconds after each
//! (default 0), then exits with `EXIT_CODE` (default 0). Every tenth line also goes to stderr.
//! It exercises log following, rotation and size limits; `chatter 0` floods stdout.

use std::io::Write;
use std::time::Duration;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let lines = arg(1, 10);
    let interval = Duration::from_millis(arg(2, 0));
    let code = arg(3, 0) as i32;
    let mut out = std::io::stdout().lock();
    let mut i: u64 = 1;
    while lines == 0 || i <= lines {
        if writeln!(out, "line {i} of {lines}: the quick brown fox jumps over the lazy dog")
            .is_err()
        {
            break;
        }
        if i % 10 == 0 {
            eprintln!("line {i} to stderr");
        }
        if !interval.is_zero() {
            let _ = out.flush();
            std::thread::sleep(interval);
        }
        i += 1;
    }
    let _ = out.flush();
    std::process::exit(code);
}
