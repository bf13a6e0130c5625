//! `memory-hog [MIB]`: allocates memory 1 MiB at a time (touching every page) until it holds
//! `MIB` MiB, or forever when no argument is given. When the sandbox refuses to grow linear
//! memory the allocation fails and the guest aborts, like an out-of-memory process.

use std::hint::black_box;
use std::io::Write;

const MIB: usize = 1 << 20;

fn main() {
    let target: Option<usize> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if target.is_some_and(|t| held.len() >= t) {
            break;
        }
        // `vec!` with a non-zero byte writes every page, so the memory is really used.
        held.push(black_box(vec![0xA5u8; MIB]));
        let _ = writeln!(std::io::stdout(), "holding {} MiB", held.len());
    }
    println!("done: held {} MiB", held.len());
}
