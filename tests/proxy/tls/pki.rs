//! A test PKI made with the `openssl` CLI: a CA, server certificates for `127.0.0.1` and
//! `localhost`, client certificates; and a rustls client that trusts the CA, for looking at
//! the certificate the server presents and for raw HTTP over TLS.

use crate::support::tool_available;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const SERVER_EXT: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
                          keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                          extendedKeyUsage=clientAuth\n";

/// The CA (`ca.crt`, `ca.key`), `server.{crt,key}` (serial 1001) and `client.{crt,key}` (CN
/// `ci-builder`) in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// `None` when openssl is missing outside CI (the test is then skipped).
    pub fn create(dir: &Path) -> Option<Pki> {
        if !tool_available("openssl", "version") {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ecr-proxy test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.server("server", 1001);
        pki.issue("client", "/CN=ci-builder", CLIENT_EXT, 2001);
        Some(pki)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// `path(file)` as a string, for command lines and TOML.
    pub fn arg(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    /// Issue `NAME.crt` and `NAME.key`: a server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, name: &str, serial: u32) {
        self.issue(name, "/CN=localhost", SERVER_EXT, serial);
    }

    /// Issue `NAME.crt` and `NAME.key`, signed by the CA, with `subject`, `ext` and `serial`.
    pub fn issue(&self, name: &str, subject: &str, ext: &str, serial: u32) {
        let ext_file = format!("{name}.ext");
        std::fs::write(self.path(&ext_file), ext).unwrap();
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext_file,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The first certificate of `file`, as DER.
    pub fn der(&self, file: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(self.path(file))
            .expect("a PEM certificate")
            .to_vec()
    }

    /// A TLS connection to `addr` that verifies the server against the CA (as `localhost`),
    /// offering `alpn`.
    pub async fn connect(&self, addr: std::net::SocketAddr, alpn: &[&str]) -> TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.der("ca.crt"))).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake with the proxy")
    }
}
