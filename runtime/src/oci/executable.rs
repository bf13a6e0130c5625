//! Finding a container's executable in its root filesystem before runc is asked to run it,
//! so that a command the image lacks is a `CreateContainerError` (which the kubelet retries)
//! with runc's own wording, rather than a failed start.
//!
//! Only what the image holds is judged: a path that leads into a volume, `/proc`, `/sys` or
//! `/dev` is left for the running container to find (those are mounted by runc, not here).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The `PATH` runc's init searches when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Symlinks followed before a path counts as unresolvable (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where a path inside the container leads.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    /// A file of the root filesystem: its host path.
    Found(PathBuf),
    /// Nothing there.
    Missing,
    /// Somewhere only the running container can look: a mount, or an error other than
    /// "not there".
    Elsewhere,
}

/// Why `program` cannot be executed in a container whose root filesystem is `rootfs`, with
/// environment `env` (`NAME=value`), working directory `cwd` and bind mounts at `mounted`
/// (guest paths). `None` when it is there, or when it lies where only the container can tell.
pub fn missing(
    rootfs: &Path,
    program: &str,
    env: &[String],
    cwd: &str,
    mounted: &[&str],
) -> Option<String> {
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    if program.contains('/') {
        let guest = Path::new(cwd).join(program);
        return match lookup(rootfs, &guest, mounted) {
            Lookup::Missing => Some(format!(
                "exec: \"{program}\": stat {program}: no such file or directory"
            )),
            Lookup::Found(host) => {
                not_executable(&host).map(|why| format!("exec: \"{program}\": {why}"))
            }
            Lookup::Elsewhere => None,
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let guest = Path::new(cwd).join(dir).join(program);
        match lookup(rootfs, &guest, mounted) {
            Lookup::Found(host) if not_executable(&host).is_none() => return None,
            Lookup::Found(_) | Lookup::Missing => {}
            Lookup::Elsewhere => return None,
        }
    }
    Some(format!(
        "exec: \"{program}\": executable file not found in $PATH"
    ))
}

/// Why the file at `host` cannot be executed, if it cannot: a directory, or no execute bit.
fn not_executable(host: &Path) -> Option<&'static str> {
    match std::fs::metadata(host) {
        Ok(m) if m.is_dir() => Some("is a directory"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("permission denied"),
        _ => None,
    }
}

/// Whether `guest` (absolute, normalised) lies where runc mounts something.
fn is_mounted(guest: &Path, mounted: &[&str]) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .chain(mounted)
        .any(|m| guest.starts_with(m))
}

/// Resolves `guest` inside `rootfs` as the container would see it: symlinks are followed
/// with absolute targets taken from the container's root, and `..` never leaves it.
fn lookup(rootfs: &Path, guest: &Path, mounted: &[&str]) -> Lookup {
    let mut pending: VecDeque<OsString> = guest
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        match Path::new(&part).components().next() {
            None | Some(Component::RootDir | Component::CurDir | Component::Prefix(_)) => {
                continue;
            }
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            Some(Component::Normal(_)) => {}
        }
        let candidate = resolved.join(&part);
        if is_mounted(&candidate, mounted) {
            return Lookup::Elsewhere;
        }
        let host = rootfs.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                let Ok(target) = std::fs::read_link(&host) else {
                    return Lookup::Elsewhere;
                };
                if links > MAX_LINKS {
                    return Lookup::Missing;
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    pending.push_front(c.as_os_str().to_os_string());
                }
            }
            Ok(m) if !m.is_dir() && !pending.is_empty() => return Lookup::Missing,
            Ok(_) => resolved = candidate,
            Err(e) if e.kind() == ErrorKind::NotFound => return Lookup::Missing,
            Err(_) => return Lookup::Elsewhere,
        }
    }
    Lookup::Found(rootfs.join(resolved.strip_prefix("/").unwrap_or(&resolved)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A root filesystem: `/bin/busybox` with `/bin/sh -> busybox`, `/usr/bin -> /bin`,
    /// a loop `/loop -> /loop`, a non-executable `/etc/passwd`, an escaping link
    /// `/up -> ../../../bin/sh`.
    fn rootfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::create_dir_all(r.join("usr")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("bin/busybox"), b"\x7fELF").unwrap();
        fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(r.join("etc/passwd"), b"root").unwrap();
        symlink("busybox", r.join("bin/sh")).unwrap();
        symlink("/bin", r.join("usr/bin")).unwrap();
        symlink("/loop", r.join("loop")).unwrap();
        symlink("../../../bin/sh", r.join("up")).unwrap();
        root
    }

    fn env(path: &str) -> Vec<String> {
        vec![format!("PATH={path}")]
    }

    #[test]
    fn commands_in_the_image_are_found_through_symlinks_and_path() {
        let root = rootfs();
        let r = root.path();
        for program in ["/bin/sh", "/usr/bin/sh", "sh", "busybox", "/up", "./bin/sh"] {
            assert_eq!(
                missing(r, program, &env("/usr/bin"), "/", &[]),
                None,
                "{program}"
            );
        }
        // No PATH in the environment: runc's default, which holds /bin.
        assert_eq!(missing(r, "sh", &[], "/", &[]), None);
        // Relative to the working directory.
        assert_eq!(missing(r, "../bin/sh", &[], "/etc", &[]), None);
    }

    #[test]
    fn missing_commands_get_runcs_wording() {
        let root = rootfs();
        let r = root.path();
        assert_eq!(
            missing(r, "/no/such/thing", &[], "/", &[]).unwrap(),
            "exec: \"/no/such/thing\": stat /no/such/thing: no such file or directory"
        );
        assert_eq!(
            missing(r, "nothing", &env("/bin:/usr/bin"), "/", &[]).unwrap(),
            "exec: \"nothing\": executable file not found in $PATH"
        );
        // A PATH without the command's directory.
        assert!(missing(r, "sh", &env("/sbin"), "/", &[]).is_some());
        assert!(missing(r, "/loop", &[], "/", &[]).is_some());
        assert!(missing(r, "/etc/passwd/x", &[], "/", &[]).is_some());
        assert_eq!(
            missing(r, "/etc/passwd", &[], "/", &[]).unwrap(),
            "exec: \"/etc/passwd\": permission denied"
        );
        assert_eq!(
            missing(r, "/bin", &[], "/", &[]).unwrap(),
            "exec: \"/bin\": is a directory"
        );
    }

    #[test]
    fn volumes_and_kernel_filesystems_are_left_to_the_container() {
        let root = rootfs();
        let r = root.path();
        assert_eq!(missing(r, "/scripts/run.sh", &[], "/", &["/scripts"]), None);
        assert_eq!(
            missing(r, "run.sh", &env("/scripts"), "/", &["/scripts"]),
            None
        );
        assert_eq!(missing(r, "/proc/self/exe", &[], "/", &[]), None);
        // A mount's name is matched by whole components.
        assert!(missing(r, "/scriptsx/run.sh", &[], "/", &["/scripts"]).is_some());
    }
}
