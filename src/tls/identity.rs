//! Who a verified client certificate names: its subject's common name, or, without one, its
//! first subject alternative name that is a DNS name, an email address or a URI. Verification
//! is rustls's (against `tls.client_ca`); this only reads the certificate, and must not decide
//! what the identity may do (`crate::auth` does).

use tokio_rustls::rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The identity `cert` names, or `None` when it names none (or cannot be read). Names with
/// control characters are skipped: an identity is logged and matched against rules.
pub fn identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    common_name(&cert).or_else(|| first_san(&cert))
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .find_map(usable)
}

fn first_san(cert: &X509Certificate<'_>) -> Option<String> {
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => usable(s),
        _ => None,
    })
}

fn usable(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.chars().any(char::is_control)).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    /// A self-signed certificate with `cn` (if any) and `sans`, as DER.
    fn cert(cn: Option<&str>, sans: Vec<SanType>) -> CertificateDer<'static> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ecr-proxy tests");
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }

    #[test]
    fn the_common_name_comes_first() {
        let c = cert(Some("ci-builder"), vec![dns("builder.example.com")]);
        assert_eq!(identity(&c).as_deref(), Some("ci-builder"));
    }

    #[test]
    fn without_a_common_name_the_first_dns_email_or_uri_name() {
        let ip = SanType::IpAddress("10.0.0.1".parse().unwrap());
        let c = cert(None, vec![ip.clone(), dns("builder.example.com")]);
        assert_eq!(identity(&c).as_deref(), Some("builder.example.com"));

        let email = SanType::Rfc822Name("alice@example.com".try_into().unwrap());
        let c = cert(None, vec![ip.clone(), email, dns("b.example.com")]);
        assert_eq!(identity(&c).as_deref(), Some("alice@example.com"));

        let uri = SanType::URI("spiffe://example.org/ns/ci/sa/builder".try_into().unwrap());
        let c = cert(None, vec![uri]);
        assert_eq!(
            identity(&c).as_deref(),
            Some("spiffe://example.org/ns/ci/sa/builder")
        );
    }

    #[test]
    fn an_empty_common_name_falls_back_to_the_names() {
        let c = cert(Some(" "), vec![dns("builder.example.com")]);
        assert_eq!(identity(&c).as_deref(), Some("builder.example.com"));
    }

    #[test]
    fn no_name_no_identity() {
        let ip = SanType::IpAddress("10.0.0.1".parse().unwrap());
        assert_eq!(identity(&cert(None, vec![ip])), None);
        assert_eq!(identity(&cert(None, vec![])), None);
        assert_eq!(identity(&CertificateDer::from(vec![0x30, 0x03])), None);
    }
}
