//! `ImageStore::pull`: fetch an image from an OCI registry (oci-client) into the store.

use std::fmt;
use std::sync::Once;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::blobs::Blobs;
use super::media::{self, Descriptor, Document, MANIFEST_MEDIA_TYPES};
use super::reference::ImageReference;
use super::{ImageError, ImageRecord, ImageStore, NewImage};

/// How to reach registries.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback registries
    /// (`localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// Basic-auth user name and password (also used to get a bearer token when the
    /// registry asks for one). Anonymous when `None`.
    pub auth: Option<(String, String)>,
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field(
                "auth",
                &self.auth.as_ref().map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

/// Why a pull failed. The messages carry the registry's own words: they become a pod's
/// `ErrImagePull` message.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference does not parse.
    #[error(transparent)]
    InvalidReference(ImageError),
    /// The registry has no such repository, tag or digest.
    #[error("{reference}: not found: {message}")]
    NotFound { reference: String, message: String },
    /// The registry refused the credentials (or wants some).
    #[error("{reference}: unauthorized: {message}")]
    Unauthorized { reference: String, message: String },
    /// Any other answer from the registry that is an error.
    #[error("registry error: {message}")]
    Registry { message: String },
    /// The registry could not be reached.
    #[error("cannot reach the registry: {message}")]
    Network { message: String },
    /// Content whose digest differs from the one it was referenced by.
    #[error("digest mismatch: {message}")]
    Digest { message: String },
    /// An index with no manifest for this platform (linux/amd64), or a container image built
    /// for another one.
    #[error("{reference}: {message}")]
    Platform { reference: String, message: String },
    /// A manifest skiff cannot use (schema 1, unknown media type, malformed).
    #[error("{reference}: {message}")]
    Unsupported { reference: String, message: String },
    /// Storing what was pulled failed.
    #[error("storing the image: {0}")]
    Store(#[source] ImageError),
}

impl From<ImageError> for PullError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::DigestMismatch { expected, actual } => PullError::Digest {
                message: format!("expected {expected}, got {actual}"),
            },
            ImageError::InvalidReference { .. } => PullError::InvalidReference(e),
            other => PullError::Store(other),
        }
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Installs rustls' ring provider as the process default if none is (reqwest, inside
/// oci-client, needs one; skiff builds without aws-lc).
fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn client(reference: &ImageReference, options: &PullOptions) -> Result<Client, PullError> {
    ensure_crypto_provider();
    let mut http: Vec<String> = Vec::new();
    for registry in &options.insecure_registries {
        http.push(registry.clone());
        if registry == "docker.io" {
            http.push("index.docker.io".to_string());
        }
    }
    if is_loopback(&reference.registry) {
        http.push(reference.registry.clone());
    }
    let config = oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::HttpsExcept(http),
        platform_resolver: Some(Box::new(oci_client::client::linux_amd64_resolver)),
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    Client::try_from(config).map_err(|e| PullError::Network {
        message: format!("cannot build the HTTP client: {}", chain(&e)),
    })
}

/// An error and its sources, joined with `: `.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Maps oci-client's errors, keeping the registry's messages.
fn map_error(reference: &str, err: OciDistributionError) -> PullError {
    let reference = reference.to_string();
    match err {
        OciDistributionError::RegistryError { envelope, .. } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        format!("{:?}", e.code)
                    } else {
                        e.message.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::ManifestBlobUnknown,
                ) => PullError::NotFound { reference, message },
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                    PullError::Unauthorized { reference, message }
                }
                _ => PullError::Registry { message },
            }
        }
        OciDistributionError::ServerError { code, message, url } => {
            let message = if message.trim().is_empty() {
                format!("HTTP {code} from {url}")
            } else {
                message.trim().to_string()
            };
            match code {
                404 => PullError::NotFound { reference, message },
                401 | 403 => PullError::Unauthorized { reference, message },
                _ => PullError::Registry {
                    message: format!("HTTP {code}: {message}"),
                },
            }
        }
        OciDistributionError::UnauthorizedError { url } => PullError::Unauthorized {
            reference,
            message: format!("authentication required for {url}"),
        },
        OciDistributionError::AuthenticationFailure(message) => {
            PullError::Unauthorized { reference, message }
        }
        OciDistributionError::ImageManifestNotFoundError(message) => {
            PullError::NotFound { reference, message }
        }
        OciDistributionError::DigestError(e) => PullError::Digest { message: chain(&e) },
        OciDistributionError::RequestError(e) => PullError::Network { message: chain(&e) },
        OciDistributionError::UnsupportedMediaTypeError(t) => PullError::Unsupported {
            reference,
            message: format!("unsupported manifest media type {t}"),
        },
        OciDistributionError::UnsupportedSchemaVersionError(v) => PullError::Unsupported {
            reference,
            message: format!("unsupported manifest schema version {v}"),
        },
        other => PullError::Registry {
            message: chain(&other),
        },
    }
}

pub(super) async fn pull(
    store: &ImageStore,
    reference: &str,
    options: &PullOptions,
) -> Result<ImageRecord, PullError> {
    let parsed = ImageReference::parse(reference).map_err(PullError::InvalidReference)?;
    let normalized = parsed.to_string();
    // By digest, content cannot change: what is stored is what the registry would give.
    if parsed.digest.is_some()
        && let Some(record) = blocking(store, {
            let normalized = normalized.clone();
            move |s| s.cached(&normalized)
        })
        .await?
    {
        return Ok(record);
    }

    let client = client(&parsed, options)?;
    let auth = match &options.auth {
        Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
        None => RegistryAuth::Anonymous,
    };
    let oci_ref: Reference = normalized.parse().map_err(|e| {
        PullError::InvalidReference(ImageError::InvalidReference {
            reference: normalized.clone(),
            reason: format!("{e}"),
        })
    })?;

    // The manifest, through an index if need be, as raw bytes (stored exactly as served).
    let (bytes, digest) = client
        .pull_manifest_raw(&oci_ref, &auth, MANIFEST_MEDIA_TYPES)
        .await
        .map_err(|e| map_error(&normalized, e))?;
    verify(&bytes, &digest)?;
    let unsupported = |message: String| PullError::Unsupported {
        reference: normalized.clone(),
        message,
    };
    let (index, manifest_bytes, manifest_digest, manifest) = match media::parse_document(&bytes)
        .map_err(&unsupported)?
    {
        Document::Manifest(m) => (None, bytes, digest, *m),
        Document::Index(index) => {
            let entry =
                media::select_platform(&index.manifests).ok_or_else(|| PullError::Platform {
                    reference: normalized.clone(),
                    message: "no matching manifest for linux/amd64 in the manifest list".into(),
                })?;
            let platform_ref = oci_ref.clone_with_digest(entry.digest.clone());
            let (m_bytes, m_digest) = client
                .pull_manifest_raw(&platform_ref, &auth, MANIFEST_MEDIA_TYPES)
                .await
                .map_err(|e| map_error(&normalized, e))?;
            verify(&m_bytes, &m_digest)?;
            if m_digest != entry.digest {
                return Err(PullError::Digest {
                    message: format!("expected {}, got {m_digest}", entry.digest),
                });
            }
            match media::parse_document(&m_bytes).map_err(&unsupported)? {
                Document::Manifest(m) => (Some((bytes, digest)), m_bytes, m_digest, *m),
                Document::Index(_) => {
                    return Err(unsupported(
                        "the index's platform entry is another index".to_string(),
                    ));
                }
            }
        }
    };
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        super::reference::validate_digest(&d.digest)
            .map_err(|reason| unsupported(format!("descriptor digest: {reason}")))?;
    }

    let mut all = vec![manifest_digest.clone()];
    if let Some((_, d)) = &index {
        all.push(d.clone());
    }
    all.push(manifest.config.digest.clone());
    all.extend(manifest.layers.iter().map(|l| l.digest.clone()));
    let mut seen = std::collections::HashSet::new();
    all.retain(|d| seen.insert(d.clone()));
    let pin = blocking(store, {
        let all = all.clone();
        move |s| s.pin(&all)
    })
    .await?;

    let blobs = store.blobs();
    fetch_blob(&client, &oci_ref, blobs, &manifest.config, &normalized).await?;
    if media::wasm_layer(&manifest).is_none() {
        // A container image for another platform is refused before any layer is fetched.
        let path = blobs.path(&manifest.config.digest)?;
        let config = std::fs::read(&path)
            .map_err(|source| PullError::Store(ImageError::Io { path, source }))?;
        if let Some(message) = super::layers::foreign_platform(&config) {
            return Err(PullError::Platform {
                reference: normalized,
                message,
            });
        }
    }
    for desc in &manifest.layers {
        fetch_blob(&client, &oci_ref, blobs, desc, &normalized).await?;
    }
    blobs.put_bytes(&manifest_bytes, Some(&manifest_digest))?;
    if let Some((bytes, digest)) = &index {
        blobs.put_bytes(bytes, Some(digest))?;
    }

    let size = manifest_bytes.len() as u64
        + index.as_ref().map_or(0, |(b, _)| b.len() as u64)
        + manifest.config.size
        + manifest.layers.iter().map(|l| l.size).sum::<u64>();
    let index_digest = index.map(|(_, d)| d);
    let record = blocking(store, move |s| {
        let (kind, wasm_digest) = super::import::classify(s, &manifest, &manifest_digest)?;
        let record = s.commit(NewImage {
            reference: normalized,
            digest: manifest_digest,
            index_digest,
            kind,
            wasm_digest,
            blobs: all,
            size,
        });
        drop(pin);
        record
    })
    .await?;
    Ok(record)
}

/// The body's sha256 must be the digest the registry (or reference) gave.
fn verify(bytes: &[u8], digest: &str) -> Result<(), PullError> {
    let actual = super::sha256_digest(bytes);
    if actual != digest {
        return Err(PullError::Digest {
            message: format!("expected {digest}, got {actual}"),
        });
    }
    Ok(())
}

/// Fetches one blob into the store unless it is there already, verifying its digest and size.
async fn fetch_blob(
    client: &Client,
    image: &Reference,
    blobs: &Blobs,
    desc: &Descriptor,
    reference: &str,
) -> Result<(), PullError> {
    if blobs.exists(&desc.digest) {
        return Ok(());
    }
    let mut writer = blobs.writer()?;
    client
        .pull_blob(image, desc.digest.as_str(), &mut writer)
        .await
        .map_err(|e| match e {
            OciDistributionError::IoError(source) => PullError::Store(ImageError::Io {
                path: writer.temp_path().to_path_buf(),
                source,
            }),
            other => map_error(reference, other),
        })?;
    writer.commit(blobs, Some(&desc.digest), Some(desc.size))?;
    Ok(())
}

/// Runs store work that takes the lock (and may wait for another process) off the async
/// workers.
async fn blocking<T: Send + 'static>(
    store: &ImageStore,
    f: impl FnOnce(&ImageStore) -> Result<T, ImageError> + Send + 'static,
) -> Result<T, PullError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| {
            PullError::Store(ImageError::Io {
                path: std::path::PathBuf::new(),
                source: std::io::Error::other(format!("store task failed: {e}")),
            })
        })?
        .map_err(PullError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn registry_errors_keep_their_message() {
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        )
        .unwrap();
        let err = map_error(
            "r/x:y",
            OciDistributionError::RegistryError {
                envelope,
                url: "http://r/v2/x/manifests/y".into(),
            },
        );
        assert!(
            matches!(&err, PullError::NotFound { message, .. } if message == "manifest unknown"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "r/x:y: not found: manifest unknown");
        let err = map_error(
            "r/x:y",
            OciDistributionError::ServerError {
                code: 401,
                url: "u".into(),
                message: "denied: no".into(),
            },
        );
        assert!(matches!(err, PullError::Unauthorized { .. }), "{err:?}");
        let redacted = format!(
            "{:?}",
            PullOptions {
                insecure_registries: vec![],
                auth: Some(("me".into(), "secret".into())),
            }
        );
        assert!(!redacted.contains("secret"));
    }
}
