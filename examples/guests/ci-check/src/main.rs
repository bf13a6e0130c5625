//! `ci-check`: the checks of skiff's CI example pipeline (`examples/ci/`), as a Wasm guest.
//!
//! * `ci-check lint SRC OUT SHARDS`: checks this shard's share of the text files under `SRC`
//!   (the sorted file list, every SHARDS-th file from `JOB_COMPLETION_INDEX`): valid UTF-8,
//!   no trailing whitespace, no tab indentation, lines of at most `CI_MAX_LINE` (default 100)
//!   characters, a final newline, no merge-conflict markers. Prints each problem as
//!   `path:line: message` and writes `OUT/lint-INDEX.txt`. Exits 0 when the shard ran (its
//!   problems are data for the report), 2 when the tree or the artifact cannot be used.
//! * `ci-check report OUT SHARDS`: reads every shard's artifact, prints the totals and the
//!   problems, writes `OUT/summary.txt`, and exits 1 if there is any problem or a shard's
//!   artifact is missing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// File name suffixes that are checked as text.
const TEXT: &[&str] = &[
    ".rs", ".toml", ".md", ".yaml", ".yml", ".json", ".sh", ".txt", ".py", ".go", ".c", ".h",
    ".js", ".ts", ".wat",
];
/// Directories never walked into.
const SKIPPED: &[&str] = &[".git", "target", "node_modules"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let shards = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok()).filter(|n| *n > 0);
    match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("lint"), Some(src), Some(out)) if shards(4).is_some() => {
            let index = std::env::var("JOB_COMPLETION_INDEX")
                .ok()
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            lint(Path::new(src), Path::new(out), index, shards(4).unwrap_or(1))
        }
        (Some("report"), Some(out), _) if shards(3).is_some() => {
            report(Path::new(out), shards(3).unwrap_or(1))
        }
        _ => {
            eprintln!("usage: ci-check lint SRC OUT SHARDS | ci-check report OUT SHARDS");
            ExitCode::from(2)
        }
    }
}

/// Every checked file under `dir`, sorted, relative to `root`.
fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                walk(root, &path, files)?;
            }
        } else if TEXT.iter().any(|ext| name.ends_with(ext)) {
            files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// The problems of one file's text, as (line, message).
fn check(text: &str, max_line: usize) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.ends_with(' ') || line.ends_with('\t') {
            problems.push((n, "trailing whitespace".to_string()));
        }
        if line.starts_with('\t') {
            problems.push((n, "indented with a tab".to_string()));
        }
        let width = line.chars().count();
        if width > max_line {
            problems.push((n, format!("line is {width} characters (limit {max_line})")));
        }
        if ["<<<<<<< ", ">>>>>>> "].iter().any(|m| line.starts_with(m)) {
            problems.push((n, "merge conflict marker".to_string()));
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        problems.push((text.lines().count(), "no newline at end of file".to_string()));
    }
    problems
}

fn lint(src: &Path, out: &Path, index: usize, shards: usize) -> ExitCode {
    let max_line = std::env::var("CI_MAX_LINE")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(100);
    let mut files = Vec::new();
    if let Err(e) = walk(src, src, &mut files) {
        eprintln!("cannot read the source tree {}: {e}", src.display());
        return ExitCode::from(2);
    }
    files.sort();
    let mine: Vec<&PathBuf> = files.iter().skip(index).step_by(shards).collect();
    println!(
        "shard {index}/{shards}: checking {} of {} files under {}",
        mine.len(),
        files.len(),
        src.display()
    );
    let (mut lines, mut found) = (0, Vec::new());
    for file in &mine {
        match fs::read(src.join(file)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    lines += text.lines().count();
                    for (line, message) in check(&text, max_line) {
                        found.push(format!("{}:{line}: {message}", file.display()));
                    }
                }
                Err(_) => found.push(format!("{}:1: not valid UTF-8", file.display())),
            },
            Err(e) => found.push(format!("{}:1: unreadable: {e}", file.display())),
        }
    }
    for problem in &found {
        println!("{problem}");
    }
    println!(
        "shard {index}: {} files, {lines} lines, {} problems",
        mine.len(),
        found.len()
    );
    let artifact = out.join(format!("lint-{index}.txt"));
    let mut text = format!(
        "files {}\nlines {lines}\nproblems {}\n",
        mine.len(),
        found.len()
    );
    for problem in &found {
        text.push_str(problem);
        text.push('\n');
    }
    // Written whole under a temporary name, then renamed: the report never sees half a file.
    let partial = out.join(format!(".lint-{index}.partial"));
    if let Err(e) = fs::write(&partial, text).and_then(|()| fs::rename(&partial, &artifact)) {
        eprintln!("cannot write {}: {e}", artifact.display());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn report(out: &Path, shards: usize) -> ExitCode {
    let (mut files, mut lines, mut problems, mut missing) = (0, 0, Vec::new(), Vec::new());
    for index in 0..shards {
        let path = out.join(format!("lint-{index}.txt"));
        let Ok(text) = fs::read_to_string(&path) else {
            missing.push(index);
            continue;
        };
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("files", n)) => files += n.parse::<usize>().unwrap_or(0),
                Some(("lines", n)) => lines += n.parse::<usize>().unwrap_or(0),
                Some(("problems", _)) => {}
                _ => problems.push(line.to_string()),
            }
        }
    }
    let mut summary = format!(
        "{shards} shards, {files} files, {lines} lines checked, {} problems\n",
        problems.len()
    );
    if !missing.is_empty() {
        summary.push_str(&format!("missing artifacts of shards {missing:?}\n"));
    }
    for problem in &problems {
        summary.push_str(problem);
        summary.push('\n');
    }
    print!("{summary}");
    let _ = std::io::stdout().flush();
    if let Err(e) = fs::write(out.join("summary.txt"), &summary) {
        eprintln!("cannot write the summary: {e}");
        return ExitCode::from(2);
    }
    if problems.is_empty() && missing.is_empty() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn finds_each_kind_of_problem() {
        let text = "ok\ntrailing \n\tindented\n<<<<<<< HEAD\nlast";
        let lines: Vec<usize> = check(text, 100).iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(check("fine\n", 100).is_empty());
        assert_eq!(check("abcdef\n", 5)[0].1, "line is 6 characters (limit 5)");
    }
}
