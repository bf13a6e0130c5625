//! Container images on disk: each layer unpacked once, by digest, into a directory that
//! overlayfs can stack; the image config (entrypoint, command, environment, user) parsed.
//!
//! Layers live under `layers/sha256/<hex>` in the store's root. OCI whiteouts are turned into
//! overlayfs' own form as they are unpacked (`.wh.NAME` becomes a 0:0 character device
//! `NAME`; `.wh..wh..opq` marks its directory opaque with `trusted.overlay.opaque=y`), so
//! the layers of an image, listed top first as `lowerdir`s, are its root filesystem.

use std::ffi::CString;
use std::fs;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::blobs::io_err;
use super::media::{self, Document};
use super::{ImageError, ImageKind, ImageRecord, ImageStore};

/// What the image's config says about how to run it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
    /// `WorkingDir` (empty when unset).
    pub working_dir: String,
    /// `User`: `uid`, `uid:gid`, `name` or `name:group` (empty when unset).
    pub user: String,
}

/// A container image ready to run: its unpacked layers and its config.
#[derive(Debug, Clone)]
pub struct ContainerImage {
    /// Unpacked layer directories, bottom layer first.
    pub layers: Vec<PathBuf>,
    /// How to run it.
    pub config: ImageConfig,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// Why an image whose config is `file` cannot run here (it names another platform than
/// linux/amd64); `None` when it can, or names none.
fn platform_mismatch(file: &ConfigFile) -> Option<String> {
    let os_differs = !file.os.is_empty() && file.os != "linux";
    let arch_differs = !file.architecture.is_empty() && file.architecture != "amd64";
    (os_differs || arch_differs).then(|| {
        let os = if file.os.is_empty() {
            "linux"
        } else {
            &file.os
        };
        format!(
            "the image is for {os}/{}, this node runs linux/amd64",
            file.architecture
        )
    })
}

/// Why a container image with this config blob cannot run on this node, when it names
/// another platform than linux/amd64. A config that does not parse is left to
/// [`parse_config`] to report.
pub fn foreign_platform(config: &[u8]) -> Option<String> {
    serde_json::from_slice::<ConfigFile>(config)
        .ok()
        .and_then(|file| platform_mismatch(&file))
}

/// Parses an image config blob, refusing images built for another platform than linux/amd64.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    let file: ConfigFile =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid image config: {e}"))?;
    if let Some(mismatch) = platform_mismatch(&file) {
        return Err(mismatch);
    }
    let run = file.config.unwrap_or_default();
    Ok(ImageConfig {
        entrypoint: run.entrypoint.unwrap_or_default(),
        cmd: run.cmd.unwrap_or_default(),
        env: run.env.unwrap_or_default(),
        working_dir: run.working_dir.unwrap_or_default(),
        user: run.user.unwrap_or_default(),
    })
}

impl ImageStore {
    /// The container image `record` names, its layers unpacked (each once per store, shared
    /// by every image that has it). Blocking: call it off the async threads.
    ///
    /// # Errors
    /// A missing or malformed manifest, config or layer, an image for another platform,
    /// or a layer that fails to unpack.
    pub fn container(&self, record: &ImageRecord) -> Result<ContainerImage, ImageError> {
        let invalid = |reason: String| ImageError::InvalidImage {
            what: record.reference.clone(),
            reason,
        };
        if record.kind != ImageKind::Container {
            return Err(invalid("not a container image".into()));
        }
        let manifest_path = self.inner.blobs.path(&record.digest)?;
        let bytes = fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
        let Document::Manifest(manifest) = media::parse_document(&bytes).map_err(invalid)? else {
            return Err(invalid("the manifest is an index".into()));
        };
        let config_path = self.inner.blobs.path(&manifest.config.digest)?;
        let config_bytes = fs::read(&config_path).map_err(io_err(&config_path))?;
        let config = parse_config(&config_bytes).map_err(invalid)?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(self.unpacked_layer(&layer.digest)?);
        }
        Ok(ContainerImage { layers, config })
    }

    /// The directory holding the layer blob `digest` unpacked, unpacking it first if needed.
    fn unpacked_layer(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let dir = self.inner.root.join("layers").join("sha256").join(hex);
        if dir.is_dir() {
            return Ok(dir);
        }
        let blob = self.inner.blobs.path(digest)?;
        let tmp = self.inner.root.join("tmp").join(format!(
            "layer-{hex}-{}-{}",
            std::process::id(),
            next_unpack()
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let file = fs::File::open(&blob).map_err(io_err(&blob))?;
        if let Err(e) = unpack_layer(BufReader::new(file), &tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(ImageError::InvalidImage {
                what: format!("layer {digest}"),
                reason: e,
            });
        }
        let parent = dir.parent().expect("layer dir has a parent");
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            // Another unpacker won the race: its copy is as good as ours.
            if !dir.is_dir() {
                return Err(io_err(&dir)(e));
            }
        }
        Ok(dir)
    }
}

/// A number unique within this process, for unpacking directories.
fn next_unpack() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Unpacks one layer tarball (plain, gzip or zstd, told apart by their magic numbers) into
/// `dir`, turning OCI whiteouts into overlayfs whiteouts. Paths that would leave `dir` are
/// refused.
pub fn unpack_layer(mut reader: impl Read, dir: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        let n = reader
            .read(&mut magic[got..])
            .map_err(|e| format!("reading the layer: {e}"))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = std::io::Cursor::new(magic[..got].to_vec()).chain(reader);
    let stream: Box<dyn Read> = if magic[..got].starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(head))
    } else if magic[..got] == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(head)
                .map_err(|e| format!("reading the zstd layer: {e}"))?,
        )
    } else {
        Box::new(head)
    };
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("reading the layer: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("a path in the layer: {e}"))?
            .into_owned();
        let Some(name) = path.file_name().map(|n| n.as_bytes().to_vec()) else {
            continue;
        };
        if name.starts_with(b".wh.") {
            // Whiteouts bypass tar's own checks: their directory must be a real directory
            // inside `dir` (no symlink on the way), their name a plain name.
            let parent = real_dir_inside(dir, path.parent().unwrap_or(Path::new("")))?;
            if name == b".wh..wh..opq" {
                set_opaque(&parent)?;
            } else {
                let hidden = &name[4..];
                if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/')
                {
                    return Err(format!(
                        "the layer holds a bad whiteout: {}",
                        path.display()
                    ));
                }
                let hidden = parent.join(std::ffi::OsStr::from_bytes(hidden));
                match fs::symlink_metadata(&hidden) {
                    Ok(m) if m.is_dir() => {
                        let _ = fs::remove_dir_all(&hidden);
                    }
                    Ok(_) => {
                        let _ = fs::remove_file(&hidden);
                    }
                    Err(_) => {}
                }
                whiteout(&hidden)?;
            }
            continue;
        }
        let unpacked = entry
            .unpack_in(dir)
            .map_err(|e| format!("unpacking {}: {}", path.display(), with_cause(&e)))?;
        if !unpacked {
            return Err(format!(
                "the layer holds a path outside its root: {}",
                path.display()
            ));
        }
    }
    Ok(())
}

/// An error with its underlying cause (tar's own errors hide it).
fn with_cause(e: &std::io::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// `dir/relative` as a real directory: `..` parts are refused, missing directories are
/// created, and a symlink (or anything but a directory) on the way is an error, so nothing
/// done in it can reach outside `dir`.
fn real_dir_inside(dir: &Path, relative: &Path) -> Result<PathBuf, String> {
    let outside = || {
        format!(
            "the layer holds a path outside its root: {}",
            relative.display()
        )
    };
    let mut out = dir.to_path_buf();
    for part in relative.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => continue,
            _ => return Err(outside()),
        }
        match fs::symlink_metadata(&out) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(outside()),
            Err(_) => {
                fs::create_dir(&out).map_err(|e| format!("creating {}: {e}", out.display()))?
            }
        }
    }
    Ok(out)
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("bad path {}", path.display()))
}

/// An overlayfs whiteout: a character device 0:0.
fn whiteout(path: &Path) -> Result<(), String> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod has no other preconditions.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    if rc != 0 {
        return Err(format!(
            "creating the whiteout {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Marks a directory opaque for overlayfs.
fn set_opaque(dir: &Path) -> Result<(), String> {
    let c = c_path(dir)?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and the value buffer is one valid byte.
    let rc = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        return Err(format!(
            "marking {} opaque: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn config_gives_entrypoint_cmd_env_and_refuses_other_platforms() {
        let c = parse_config(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Env":["PATH=/bin"],"WorkingDir":"/w","User":"1000:1000"}}"#,
        )
        .unwrap();
        assert_eq!(c.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(c.cmd, ["echo hi"]);
        assert_eq!(c.env, ["PATH=/bin"]);
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str()),
            ("/w", "1000:1000")
        );
        let e = parse_config(br#"{"architecture":"arm64","os":"linux"}"#).unwrap_err();
        assert!(e.contains("linux/arm64"), "{e}");
        assert!(parse_config(b"{").is_err());
        assert_eq!(
            foreign_platform(br#"{"architecture":"arm64"}"#).unwrap(),
            "the image is for linux/arm64, this node runs linux/amd64"
        );
        assert!(foreign_platform(br#"{"os":"windows","architecture":"amd64"}"#).is_some());
        assert_eq!(
            foreign_platform(br#"{"os":"linux","architecture":"amd64"}"#),
            None
        );
        assert_eq!(foreign_platform(b"{"), None);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let tar = layer(&[
            ("etc/config", b"x"),
            ("etc/.wh.old", b""),
            ("var/.wh..wh..opq", b""),
        ]);
        unpack_layer(&tar[..], dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join("etc/config")).unwrap(), b"x");
        let meta = fs::symlink_metadata(dir.path().join("etc/old")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert!(!dir.path().join("etc/.wh.old").exists());
        assert!(dir.path().join("var").is_dir());
    }

    #[test]
    fn zstd_layers_unpack() {
        let dir = tempfile::tempdir().unwrap();
        let tar = layer(&[("etc/motd", b"zstd")]);
        let compressed = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        unpack_layer(&compressed[..], dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join("etc/motd")).unwrap(), b"zstd");
    }

    #[test]
    fn gzip_layers_unpack_and_escapes_are_refused() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer(&[("bin/tool", b"#!")])).unwrap();
        unpack_layer(&gz.finish().unwrap()[..], dir.path()).unwrap();
        assert!(dir.path().join("bin/tool").is_file());
        assert!(real_dir_inside(dir.path(), Path::new("../x")).is_err());
    }

    #[test]
    fn whiteouts_cannot_reach_through_symlinks_or_up() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("victim"), "keep").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_mode(0o777);
        link.set_uid(0);
        link.set_gid(0);
        link.set_mtime(0);
        link.set_link_name(outside.path()).unwrap();
        link.set_cksum();
        builder.append_data(&mut link, "a", &[][..]).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, "a/.wh.victim", &[][..])
            .unwrap();
        let escape = builder.into_inner().unwrap();
        assert!(unpack_layer(&escape[..], dir.path()).is_err());
        assert_eq!(
            fs::read_to_string(outside.path().join("victim")).unwrap(),
            "keep"
        );
        for bad in ["x/.wh..", "x/.wh."] {
            assert!(
                unpack_layer(&layer(&[(bad, b"")])[..], dir.path()).is_err(),
                "{bad}"
            );
        }
    }
}
