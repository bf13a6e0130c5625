//! Image references, normalized the way Docker and containerd do it.
//!
//! `hello` → `docker.io/library/hello:latest`; `localhost:5000/x` keeps its registry;
//! `name@sha256:…` keeps its digest (and gets no default tag).

use std::fmt;

use super::ImageError;

/// The registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `docker.io`, `localhost`, `127.0.0.1:5000`, `ghcr.io`, …
    pub registry: String,
    /// `library/hello`, `org/app`, …
    pub repository: String,
    /// The tag; `latest` when the reference named neither a tag nor a digest.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalizes `input`.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`] when `input` is not a valid image reference.
    pub fn parse(input: &str) -> Result<Self, ImageError> {
        let invalid = |reason: &str| ImageError::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest).map_err(|r| invalid(&r))?;
                (name, Some(digest.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i..].contains('/') => {
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            _ => (name_tag, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|r| invalid(&r))?;
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if registry == "index.docker.io" {
            registry = DEFAULT_REGISTRY.to_string();
        }
        validate_registry(&registry).map_err(|r| invalid(&r))?;
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_repository(&repository).map_err(|r| invalid(&r))?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(invalid("name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalizes a reference docker-style: `hello` → `docker.io/library/hello:latest`,
/// `localhost:5000/x` keeps its host, the default tag is `latest`, digests are kept.
///
/// # Errors
/// [`ImageError::InvalidReference`] when `reference` is not a valid image reference.
pub fn normalize(reference: &str) -> Result<String, ImageError> {
    ImageReference::parse(reference).map(|r| r.to_string())
}

/// `sha256:` followed by 64 lowercase hex digits.
pub(crate) fn validate_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!("unsupported digest {digest:?} (want sha256:<hex>)"));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "invalid digest {digest:?} (want sha256: and 64 lowercase hex digits)"
        ));
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > 128
        || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!("invalid tag {tag:?}"));
    }
    Ok(())
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid registry host {registry:?}"));
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        // [IPv6]:port
        let Some((addr, after)) = rest.split_once(']') else {
            return bad();
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad();
        }
        match after {
            "" => return Ok(()),
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return bad(),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return bad();
    }
    Ok(())
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn validate_repository(repository: &str) -> Result<(), String> {
    for component in repository.split('/') {
        if !component_ok(component) {
            return Err(format!(
                "invalid repository name {repository:?} (components must be lowercase letters, \
                 digits and single separators . _ __ -)"
            ));
        }
    }
    Ok(())
}

fn component_ok(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__", or "-" repeated.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalize_table() {
        let cases: &[(&str, &str)] = &[
            ("hello", "docker.io/library/hello:latest"),
            ("hello:v1", "docker.io/library/hello:v1"),
            ("library/hello", "docker.io/library/hello:latest"),
            ("docker.io/hello", "docker.io/library/hello:latest"),
            (
                "index.docker.io/library/hello:1",
                "docker.io/library/hello:1",
            ),
            ("org/app:2.0", "docker.io/org/app:2.0"),
            ("localhost/hello:v1", "localhost/hello:v1"),
            ("localhost/hello", "localhost/hello:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
            ("[::1]:5000/x:y", "[::1]:5000/x:y"),
            (
                "ghcr.io/org/sub/app:v1.2-rc_3",
                "ghcr.io/org/sub/app:v1.2-rc_3",
            ),
            ("foo:5000", "docker.io/library/foo:5000"),
            ("my-app__x.y--z", "docker.io/library/my-app__x.y--z:latest"),
            ("Registry.Example.com/x", "Registry.Example.com/x:latest"),
            ("lower:UPPER", "docker.io/library/lower:UPPER"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), *want, "{input}");
        }
        // Digests are kept, with no default tag; a tag given with a digest is kept too.
        assert_eq!(
            normalize(&format!("hello@{D}")).unwrap(),
            format!("docker.io/library/hello@{D}")
        );
        assert_eq!(
            normalize(&format!("localhost:5000/x:v1@{D}")).unwrap(),
            format!("localhost:5000/x:v1@{D}")
        );
        // Normalizing is idempotent.
        for (_, want) in cases {
            assert_eq!(normalize(want).unwrap(), *want);
        }
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Hello",
            "hello world",
            "hello:",
            "hello:-x",
            "hello@sha256:abc",
            "hello@md5:0123",
            "a//b",
            "-a/b",
            "a/b-",
            "a/b_-c",
            "a/b___c",
            "localhost:port/x",
            "/x",
            "x/",
            &format!("x@{}", D.to_uppercase()),
        ] {
            let err = normalize(bad).unwrap_err();
            assert!(
                matches!(err, ImageError::InvalidReference { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parts() {
        let r = ImageReference::parse("localhost:5000/team/app:v3").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v3"));
        assert_eq!(r.digest, None);
        assert_eq!(r.name(), "localhost:5000/team/app");
    }
}
