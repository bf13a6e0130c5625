//! What a container needs from the host kernel besides runc: the pod's network namespace
//! (with loopback up), the overlay root filesystem, and the cgroup counters runc leaves to us.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a network namespace that outlives its creator, bind-mounted on `file` (like
/// `ip netns add`), with its loopback interface up. Runs on a thread of its own, which
/// leaves the caller's namespaces untouched.
pub fn create_netns(file: &Path) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    if is_mountpoint(file) {
        return Ok(());
    }
    fs::File::create(file)?;
    let target = c_path(file)?;
    std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare affects only this thread, which ends right after.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let source = CString::new(format!("/proc/self/task/{tid}/ns/net")).expect("no NUL");
        // SAFETY: both paths are valid C strings; a bind mount takes no data.
        check(unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        })?;
        loopback_up()
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

/// Sets `lo` up in the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: fd is a socket and req a valid ifreq for these two requests.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}

/// Runs `f` on a thread of its own that has joined the network namespace mounted on `file`
/// (for probes that connect to a pod's ports).
pub fn in_netns<T: Send + 'static>(
    file: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    let ns = fs::File::open(file)?;
    std::thread::spawn(move || -> io::Result<T> {
        // SAFETY: ns is an open namespace file; setns affects only this thread.
        check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

/// Unmounts and removes what [`create_netns`] made. Missing is fine.
pub fn remove_netns(file: &Path) {
    // Mounts may be stacked on the file (one per attempt at creating it): remove them all.
    for _ in 0..16 {
        if !is_mountpoint(file) {
            break;
        }
        unmount(file);
    }
    let _ = fs::remove_file(file);
}

/// Whether `path` is a mount point (from `/proc/self/mountinfo`).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.as_os_str().as_bytes();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m).as_bytes() == wanted)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    // Deepest first; a path listed twice has two mounts stacked on it, each to unmount.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Lazily unmounts `path` (ignoring "not mounted").
pub fn unmount(path: &Path) {
    if let Ok(c) = c_path(path) {
        // SAFETY: c is a valid path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Mounts the layers (bottom first) as an overlay on `merged`, with a fresh writable
/// `upper` and `work` beside it.
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> io::Result<()> {
    for dir in [upper, work, merged] {
        fs::create_dir_all(dir)?;
    }
    let empty;
    let lower: Vec<String> = if layers.is_empty() {
        empty = upper.with_extension("empty");
        fs::create_dir_all(&empty)?;
        vec![empty.display().to_string()]
    } else {
        layers
            .iter()
            .rev()
            .map(|l| l.display().to_string())
            .collect()
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() >= 4096 {
        return Err(io::Error::other(format!(
            "{} layers make an overlay option string longer than a page",
            layers.len()
        )));
    }
    let (source, fstype) = (c"overlay", c"overlay");
    let target = c_path(merged)?;
    let data = CString::new(options).map_err(|_| io::Error::other("NUL in a layer path"))?;
    // SAFETY: all pointers are valid C strings for the duration of the call.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    })
}

/// Copies the layers (bottom first) into `dir`, applying each layer's overlayfs whiteouts
/// (0:0 character devices delete, opaque directories replace): the root filesystem for a
/// host where overlayfs cannot be mounted.
pub fn copy_layers(layers: &[PathBuf], dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for layer in layers {
        copy_layer(layer, dir)?;
    }
    Ok(())
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = c_path(dir) else { return false };
    let mut value = [0u8; 1];
    // SAFETY: valid path and name; the buffer is one byte long, as passed.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            1,
        )
    };
    n == 1 && value[0] == b'y'
}

fn remove_any(path: &Path) {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        let _ = fs::remove_dir_all(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

fn copy_layer(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&source)?;
        if is_whiteout(&meta) {
            remove_any(&target);
            continue;
        }
        let kind = meta.file_type();
        if kind.is_dir() {
            let target_is_dir = fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
            if is_opaque(&source) || !target_is_dir {
                remove_any(&target);
                fs::create_dir(&target)?;
            }
            copy_layer(&source, &target)?;
        } else {
            remove_any(&target);
            if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
            } else if kind.is_file() {
                fs::copy(&source, &target)?;
            } else {
                continue;
            }
        }
        if let Ok(c) = c_path(&target) {
            // SAFETY: valid path; ownership as in the layer (lchown: not through links).
            unsafe { libc::lchown(c.as_ptr(), meta.uid(), meta.gid()) };
        }
        // The mode after the owner: chown clears setuid and setgid bits.
        if !kind.is_symlink() {
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode()))?;
        }
    }
    Ok(())
}

/// The cgroup v1 memory controller's mount, if this host has one.
fn memory_root() -> Option<PathBuf> {
    let root = PathBuf::from("/sys/fs/cgroup/memory");
    root.join("memory.limit_in_bytes").exists().then_some(root)
}

/// Whether the kernel accounts swap (`memory.memsw.*`), so memory+swap can be capped too.
pub fn swap_accounted() -> bool {
    memory_root().is_some_and(|r| r.join("memory.memsw.limit_in_bytes").exists())
}

/// How many times the OOM killer fired in the cgroup at `cgroups_path`: `oom_kill` in
/// cgroup v1's `memory.oom_control`, or in cgroup v2's `memory.events`.
pub fn oom_kills(cgroups_path: &str) -> u64 {
    let rel = cgroups_path.trim_start_matches('/');
    let candidates = [
        PathBuf::from("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.oom_control"),
        PathBuf::from("/sys/fs/cgroup")
            .join(rel)
            .join("memory.events"),
    ];
    candidates
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0)
}

/// Removes the cgroup directory `cgroups_path` (and everything below it) from every
/// hierarchy; runc removes only a container's own leaf.
pub fn remove_cgroup(cgroups_path: &str) {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    roots.extend(
        hierarchies
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    for root in roots {
        remove_tree(&root.join(rel));
    }
}

/// cgroup directories can only be removed leaf first, with `rmdir`.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_layers_apply_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let (bottom, top, root) = (
            dir.path().join("l1"),
            dir.path().join("l2"),
            dir.path().join("root"),
        );
        for d in [
            bottom.join("etc"),
            bottom.join("var/cache"),
            top.join("var"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(bottom.join("etc/a"), "old").unwrap();
        fs::write(bottom.join("etc/gone"), "x").unwrap();
        fs::write(bottom.join("var/cache/c"), "x").unwrap();
        fs::create_dir_all(top.join("etc")).unwrap();
        fs::write(top.join("etc/a"), "new").unwrap();
        let c = c_path(&top.join("etc/gone")).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
        copy_layers(&[bottom, top], &root).unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/a")).unwrap(), "new");
        assert!(!root.join("etc/gone").exists());
        assert!(root.join("var/cache/c").exists());
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
