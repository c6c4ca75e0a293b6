//! TLS material. On first use a development CA and a server certificate for `localhost` and
//! the loopback addresses are generated into the data folder and reused afterwards; local
//! clients trust that CA. In production the operator names PEM files instead. Certificates are
//! always verified: there is no option to turn verification off.

use crate::config::ServerTls;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// Files of the development CA in its folder.
pub const DEV_CA_CERT: &str = "dev-ca.pem";
const DEV_CA_KEY: &str = "dev-ca.key";
const DEV_SERVER_CERT: &str = "dev-server.pem";
const DEV_SERVER_KEY: &str = "dev-server.key";
const DEV_SERVICE_CERT: &str = "dev-service.pem";
const DEV_SERVICE_KEY: &str = "dev-service.key";
/// The name every service certificate carries: a server that admits only services
/// (`ClientAuth::Services`) accepts client certificates for this name alone.
pub const SERVICE_NAME: &str = "service.pwn.internal";

/// Why TLS material could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("TLS file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating the development certificates")]
    Generate(#[from] rcgen::Error),
}

/// A server's certificate chain and key, PEM-encoded.
#[derive(Clone)]
pub struct ServerCert {
    /// Certificate chain.
    pub cert_pem: String,
    /// Private key (never logged).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").field("key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })
}

fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    std::fs::write(path, text).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })
}

/// Writes a secret readable by the owner only (created so: never readable by others, even for
/// a moment).
fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| TlsError::Io { path: path.to_path_buf(), source })
}

/// The development CA's parameters (its certificate is self-signed with them; service
/// certificates are issued in their name).
fn dev_ca_params() -> Result<CertificateParams, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "PWN development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(ca_params)
}

/// The certificate services present to each other (a gateway to zones: mutual TLS), issued
/// for [`SERVICE_NAME`] by the development CA in `dir`, generated if missing. Whoever can read
/// the data folder's keys is a service.
pub fn service_cert(dir: &Path) -> Result<ServerCert, TlsError> {
    ensure_dev_ca(dir)?;
    let (cert_path, key_path) = (dir.join(DEV_SERVICE_CERT), dir.join(DEV_SERVICE_KEY));
    if !(cert_path.exists() && key_path.exists()) {
        let ca_key = KeyPair::from_pem(&read(&dir.join(DEV_CA_KEY))?)?;
        let issuer = Issuer::new(dev_ca_params()?, &ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![SERVICE_NAME.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, "PWN service");
        let cert = params.signed_by(&key, &issuer)?;
        write(&cert_path, &cert.pem())?;
        write_private(&key_path, &key.serialize_pem())?;
    }
    Ok(ServerCert { cert_pem: read(&cert_path)?, key_pem: read(&key_path)? })
}

/// Loads the server certificate the configuration names, generating the development CA first
/// if needed.
pub fn server_cert(tls: &ServerTls) -> Result<ServerCert, TlsError> {
    match tls {
        ServerTls::Files { cert_pem, key_pem } => Ok(ServerCert { cert_pem: read(cert_pem)?, key_pem: read(key_pem)? }),
        ServerTls::DevCa { dir } => {
            ensure_dev_ca(dir)?;
            Ok(ServerCert { cert_pem: read(&dir.join(DEV_SERVER_CERT))?, key_pem: read(&dir.join(DEV_SERVER_KEY))? })
        }
    }
}

/// The development CA certificate that local clients trust, generating it if needed.
pub fn dev_ca_cert(dir: &Path) -> Result<String, TlsError> {
    ensure_dev_ca(dir)?;
    read(&dir.join(DEV_CA_CERT))
}

/// The file holding the key services on one machine prove to each other (gateway to zone).
pub const SERVICE_KEY: &str = "service.key";

/// The services' shared key in `dir`, generated (readable by the owner only) if missing. A
/// gateway proves it to a zone node inside TLS, so only the real zone ever sees it.
pub fn service_key(dir: &Path) -> Result<[u8; 32], TlsError> {
    let path = dir.join(SERVICE_KEY);
    if !path.exists() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_path_buf(), source })?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| TlsError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, &hex)?;
    }
    let text = read(&path)?;
    let bytes: Vec<u8> = (0..text.trim().len())
        .step_by(2)
        .filter_map(|i| text.trim().get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    bytes.try_into().map_err(|_| TlsError::Io {
        path: path.clone(),
        source: std::io::Error::other("a service key is 64 hexadecimal digits"),
    })
}

/// Creates the development CA and server certificate in `dir` unless they exist.
pub fn ensure_dev_ca(dir: &Path) -> Result<(), TlsError> {
    let files = [DEV_CA_CERT, DEV_CA_KEY, DEV_SERVER_CERT, DEV_SERVER_KEY].map(|f| dir.join(f));
    if files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_path_buf(), source })?;
    let ca_key = KeyPair::generate()?;
    let ca_params = dev_ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_key = KeyPair::generate()?;
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])?;
    server_params.distinguished_name.push(DnType::CommonName, "PWN development server");
    let server_cert = server_params.signed_by(&server_key, &issuer)?;
    write(&files[0], &ca_cert.pem())?;
    write_private(&files[1], &ca_key.serialize_pem())?;
    // The server presents its certificate followed by the CA's.
    write(&files[2], &format!("{}{}", server_cert.pem(), ca_cert.pem()))?;
    write_private(&files[3], &server_key.serialize_pem())?;
    tracing::info!(dir = %dir.display(), "generated a development CA and server certificate");
    Ok(())
}
