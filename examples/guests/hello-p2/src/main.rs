//! `hello-p2`: a WASI preview 2 command component (built for `wasm32-wasip2`). Prints a
//! greeting, its arguments and `HELLO_*` variables, then exits with `HELLO_EXIT` (default 0).

fn main() {
    println!("hello from a skiff wasm component");
    for (i, arg) in std::env::args().enumerate() {
        println!("argv[{i}]={arg}");
    }
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("HELLO_")) {
        println!("env {k}={v}");
    }
    let code: i32 = std::env::var("HELLO_EXIT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code != 0 {
        std::process::exit(code);
    }
}
