//! The cluster CA and the API server's serving certificate, generated on first start.
//!
//! The CA key and certificate persist in `DATA/pki/`, so kubeconfigs stay valid across
//! restarts; the serving certificate is re-issued by that CA at every start, so it always names
//! the address the server listens on.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Errors creating or loading the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Generating or parsing a key or certificate failed.
    #[error("certificate error: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// The PEM material the server and its kubeconfig need.
pub struct Pki {
    /// The CA certificate (goes into kubeconfig as certificate-authority-data).
    pub ca_pem: String,
    /// The serving certificate chain: serving certificate then CA.
    pub serving_chain_pem: String,
    /// The serving key.
    pub serving_key_pem: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file readable only by its owner, atomically (temporary file, then rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The CA's fixed parameters: the same at generation and when signing later.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "skiff-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// Loads the CA from `dir/pki`, creating it on first start, and issues a serving certificate
/// for `localhost`, the loopback addresses, the host name and `extra_ips`.
pub fn load_or_create(dir: &Path, extra_ips: &[IpAddr]) -> Result<Pki, PkiError> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).map_err(io(&pki))?;
    let ca_cert_path = pki.join("ca.crt");
    let ca_key_path = pki.join("ca.key");
    let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        let ca_pem = std::fs::read_to_string(&ca_cert_path).map_err(io(&ca_cert_path))?;
        let key_pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        (ca_pem, KeyPair::from_pem(&key_pem)?)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes()).map_err(io(&ca_key_path))?;
        write_private(&ca_cert_path, cert.pem().as_bytes()).map_err(io(&ca_cert_path))?;
        (cert.pem(), key)
    };
    let issuer = Issuer::new(ca_params()?, ca_key);

    let mut names = vec!["localhost".to_string()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "skiff-apiserver");
    params.distinguished_name = dn;
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")];
    ips.extend(extra_ips.iter().filter(|ip| !ip.is_unspecified()));
    ips.dedup();
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (year, month, day) = validity_start();
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let serving_key = KeyPair::generate()?;
    let serving = params.signed_by(&serving_key, &issuer)?;
    let chain = format!("{}{}", serving.pem(), ca_pem);
    let serving_cert_path = pki.join("serving.crt");
    write_private(&serving_cert_path, chain.as_bytes()).map_err(io(&serving_cert_path))?;
    Ok(Pki {
        ca_pem,
        serving_chain_pem: chain,
        serving_key_pem: serving_key.serialize_pem(),
    })
}

/// The serving certificate's first valid day: yesterday, tolerating clock skew.
fn validity_start() -> (i32, u8, u8) {
    use chrono::{Datelike, Utc};
    let today = Utc::now().date_naive();
    let start = today.pred_opt().unwrap_or(today);
    (start.year(), start.month() as u8, start.day() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_persists_and_serving_certs_are_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &[]).unwrap();
        let second = load_or_create(dir.path(), &["10.0.0.5".parse().unwrap()]).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem, "the CA survives restarts");
        assert_ne!(first.serving_key_pem, second.serving_key_pem);
        assert!(second.serving_chain_pem.ends_with(&second.ca_pem));
    }
}
