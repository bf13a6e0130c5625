//! `hello`: the smallest useful skiff Wasm guest (WASI preview 1 command).
//!
//! * prints a greeting and its arguments (`argv[0]` included);
//! * prints the environment variables whose names start with `HELLO_`, and `PWD`;
//! * `HELLO_WRITE=<path>`: writes a line to `<path>` (exit code 10 if that fails);
//! * `HELLO_READ=<path>`: reads `<path>` and prints it (exit code 11 if that fails);
//! * `HELLO_APPEND=<path>`: appends a line to `<path>` and prints how many lines it now has
//!   (exit code 12 if that fails): a volume that outlives its pod shows a growing count;
//! * `HELLO_SLEEP=<seconds>`: sleeps that long before exiting (a long-running replica);
//! * with none of those set but `PWD` set (skiff sets it from the working directory), it changes
//!   into `PWD` and tries to write `hello.txt` there, reporting the result without failing.

use std::env;
use std::fs;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "hello from a skiff wasm guest");
    for (i, arg) in env::args().enumerate() {
        let _ = writeln!(out, "argv[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = env::vars()
        .filter(|(k, _)| k.starts_with("HELLO_") || k == "PWD")
        .collect();
    vars.sort();
    for (k, v) in &vars {
        let _ = writeln!(out, "env {k}={v}");
    }

    let write_target = env::var("HELLO_WRITE").ok();
    let read_target = env::var("HELLO_READ").ok();
    let append_target = env::var("HELLO_APPEND").ok();

    if let Some(path) = &append_target {
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "appended by hello"))
            .and_then(|()| fs::read_to_string(path));
        match appended {
            Ok(text) => {
                let _ = writeln!(out, "{path} has {} lines", text.lines().count());
            }
            Err(e) => {
                eprintln!("append {path} failed: {e}");
                return ExitCode::from(12);
            }
        }
    }

    if let Some(path) = &write_target {
        match fs::write(path, "written by hello\n") {
            Ok(()) => {
                let _ = writeln!(out, "wrote {path}");
            }
            Err(e) => {
                eprintln!("write {path} failed: {e}");
                return ExitCode::from(10);
            }
        }
    }
    if let Some(path) = &read_target {
        match fs::read_to_string(path) {
            Ok(text) => {
                let _ = writeln!(out, "read {path}: {}", text.trim_end());
            }
            Err(e) => {
                eprintln!("read {path} failed: {e}");
                return ExitCode::from(11);
            }
        }
    }
    if write_target.is_none()
        && read_target.is_none()
        && append_target.is_none()
        && let Ok(pwd) = env::var("PWD")
    {
        let result = env::set_current_dir(&pwd).and_then(|()| fs::write("hello.txt", "hello\n"));
        match result {
            Ok(()) => {
                let _ = writeln!(out, "wrote {pwd}/hello.txt");
            }
            Err(e) => {
                let _ = writeln!(out, "no writable working directory ({e})");
            }
        }
    }
    let _ = out.flush();
    if let Some(secs) = env::var("HELLO_SLEEP")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
    ExitCode::SUCCESS
}
