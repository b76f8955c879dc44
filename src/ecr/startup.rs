//! What the proxy says at start about its way to ECR: the endpoint it calls, the region, the
//! registry, and whether (and from which provider) AWS credentials were found. Credentials are
//! resolved once, with a bounded wait; no secret ever enters the report. It reads the SDK's
//! configuration and asks the credential provider; it never calls ECR (readiness is
//! `Ecr::probe`'s) and knows nothing of HTTP or the registry protocol.

use super::{Ecr, Upstream};
use aws_config::SdkConfig;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_ecr::config::endpoint::{Params, ResolveEndpoint};
use aws_types::service_config::ServiceConfigKey;
use std::fmt;
use std::time::Duration;

/// The SDK's log targets, quieted to ERROR unless `RUST_LOG` says otherwise: without credentials
/// its credential chain and region lookup log a wall of IMDS warnings at start and on every call.
/// The start-up report folds them into one line, and failed calls reach the log through
/// `errors`.
pub const QUIET_SDK_LOGS: &str =
    "aws_config=error,aws_smithy_runtime=error,aws_smithy_http_client=error,aws_runtime=error";

/// The start-up facts about ECR, for one log line.
#[derive(Clone, Debug)]
pub struct Startup {
    /// The URL ECR calls go to.
    pub endpoint: String,
    pub region: String,
    pub registry: Registry,
    pub credentials: CredentialStatus,
}

/// Which registry (account) the proxy addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registry {
    /// `upstream.registry_id` / `ECR_PROXY_REGISTRY_ID`.
    Configured(String),
    /// The account the credentials belong to, as the provider reported it.
    CredentialsAccount(String),
    /// The credentials' account, not known before the first call.
    Unknown,
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Registry::Configured(id) => f.write_str(id),
            Registry::CredentialsAccount(id) => write!(f, "{id} (the credentials' account)"),
            Registry::Unknown => f.write_str("the credentials' account"),
        }
    }
}

/// Whether credentials could be had at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialStatus {
    /// Found, from this provider (a name, never a key).
    Found(&'static str),
    /// None found: why (the provider chain's own words, which hold no secret).
    Missing(String),
}

/// What `Ecr::connect` keeps for the report: the SDK's client configuration does not give back
/// its endpoint or credential provider.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    endpoint: String,
    credentials: Option<SharedCredentialsProvider>,
}

impl Setup {
    pub(super) async fn new(shared: &SdkConfig, upstream: &Upstream) -> Setup {
        Setup {
            endpoint: endpoint(shared, upstream).await,
            credentials: shared.credentials_provider(),
        }
    }
}

impl Ecr {
    /// Resolve the credentials once (waiting at most `wait`) and describe the way to ECR.
    /// This asks the provider chain itself, outside the client's identity cache, so a role's
    /// credentials are fetched once more than the first ECR call needs (one STS or IMDS round
    /// trip at start): the price of a start-up line that knows before any request comes.
    pub async fn startup(&self, wait: Duration) -> Startup {
        let credentials = match &self.setup.credentials {
            None => Err("no credentials provider is configured".to_string()),
            Some(provider) => {
                match tokio::time::timeout(wait, provider.provide_credentials()).await {
                    Err(_) => Err(format!(
                        "the credential providers gave no answer within {} s",
                        wait.as_secs()
                    )),
                    Ok(Err(e)) => Err(chain_text(&e)),
                    Ok(Ok(creds)) => Ok(creds),
                }
            }
        };
        let registry = match (&self.registry_id, &credentials) {
            (Some(id), _) => Registry::Configured(id.clone()),
            (None, Ok(c)) => c
                .account_id()
                .map(|a| Registry::CredentialsAccount(a.as_str().to_string()))
                .unwrap_or(Registry::Unknown),
            (None, Err(_)) => Registry::Unknown,
        };
        Startup {
            endpoint: self.setup.endpoint.clone(),
            region: self
                .client
                .config()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "none".into()),
            registry,
            credentials: match credentials {
                Ok(c) => CredentialStatus::Found(source_of(&c)),
                Err(why) => CredentialStatus::Missing(why),
            },
        }
    }
}

/// An error and its causes on one line (the SDK's provider errors nest their reasons).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    one_line(&text)
}

/// The SDK lists the providers it tried on lines of their own; a log line must stay one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The provider credentials came from, by the features the SDK's providers record on them.
pub(crate) fn source_of(c: &Credentials) -> &'static str {
    use AwsCredentialFeature as F;
    let features = c
        .get_property::<Vec<AwsCredentialFeature>>()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |f: &[F]| features.iter().any(|x| f.contains(x));
    if has(&[
        F::CredentialsEnvVarsStsWebIdToken,
        F::CredentialsProfileStsWebIdToken,
        F::CredentialsStsAssumeRoleWebId,
    ]) {
        "web identity token (IRSA)"
    } else if has(&[F::CredentialsSso, F::CredentialsProfileSso]) {
        "SSO"
    } else if has(&[F::CredentialsProcess, F::CredentialsProfileProcess]) {
        "credential_process"
    } else if has(&[F::CredentialsHttp]) {
        "container endpoint (EKS Pod Identity, ECS)"
    } else if has(&[F::CredentialsImds]) {
        "instance metadata (IMDS)"
    } else if has(&[F::CredentialsEnvVars]) {
        "environment (AWS_ACCESS_KEY_ID)"
    } else if has(&[F::CredentialsStsAssumeRole]) {
        "assumed role (profile)"
    } else if has(&[
        F::CredentialsProfile,
        F::CredentialsProfileSourceProfile,
        F::CredentialsProfileNamedProvider,
    ]) {
        "profile"
    } else {
        "static (configured)"
    }
}

/// The URL ECR calls go to: `upstream.endpoint_url`, else `AWS_ENDPOINT_URL_ECR` (or the
/// profile's), else `AWS_ENDPOINT_URL`, as the SDK picks them; else ECR's regional endpoint.
async fn endpoint(shared: &SdkConfig, upstream: &Upstream) -> String {
    let configured = upstream.endpoint_url.clone().or_else(|| {
        shared
            .service_config()
            .and_then(|c| {
                c.load_config(
                    ServiceConfigKey::builder()
                        .service_id("ECR")
                        .env("AWS_ENDPOINT_URL")
                        .profile("endpoint_url")
                        .build()
                        .ok()?,
                )
            })
            .or_else(|| shared.endpoint_url().map(str::to_string))
    });
    if let Some(url) = configured {
        return url;
    }
    let Some(region) = shared.region() else {
        return "none (no region)".into();
    };
    let params = Params::builder()
        .region(region.to_string())
        .set_use_fips(shared.use_fips())
        .set_use_dual_stack(shared.use_dual_stack())
        .build();
    match params {
        Ok(p) => match aws_sdk_ecr::config::endpoint::DefaultResolver::new()
            .resolve_endpoint(&p)
            .await
        {
            Ok(e) => e.url().to_string(),
            Err(e) => format!("none ({e})"),
        },
        Err(e) => format!("none ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(features: &[AwsCredentialFeature]) -> Credentials {
        let mut c = Credentials::new("AKID", "SECRET", None, None, "test");
        c.get_property_mut_or_default::<Vec<AwsCredentialFeature>>()
            .extend_from_slice(features);
        c
    }

    #[test]
    fn credentials_are_named_by_their_provider() {
        use AwsCredentialFeature as F;
        assert_eq!(source_of(&with(&[])), "static (configured)");
        assert_eq!(
            source_of(&with(&[F::CredentialsEnvVars])),
            "environment (AWS_ACCESS_KEY_ID)"
        );
        assert_eq!(
            source_of(&with(&[F::CredentialsProfileStsWebIdToken])),
            "web identity token (IRSA)"
        );
        assert_eq!(
            source_of(&with(&[F::CredentialsHttp])),
            "container endpoint (EKS Pod Identity, ECS)"
        );
        assert_eq!(
            source_of(&with(&[F::CredentialsImds])),
            "instance metadata (IMDS)"
        );
        assert_eq!(
            source_of(&with(&[F::CredentialsProfile, F::CredentialsStsAssumeRole])),
            "assumed role (profile)"
        );
        assert_eq!(source_of(&with(&[F::CredentialsProfile])), "profile");
    }

    #[test]
    fn the_registry_says_where_it_comes_from() {
        assert_eq!(
            Registry::Configured("123456789012".into()).to_string(),
            "123456789012"
        );
        assert_eq!(
            Registry::CredentialsAccount("123456789012".into()).to_string(),
            "123456789012 (the credentials' account)"
        );
        assert_eq!(Registry::Unknown.to_string(), "the credentials' account");
    }

    #[test]
    fn a_chain_error_becomes_one_line() {
        let sdk = "no credentials found in chain. Attempted:\n  Environment: not set\n\n  Profile: no file\n";
        let text = one_line(sdk);
        assert_eq!(
            text,
            "no credentials found in chain. Attempted:; Environment: not set; Profile: no file"
        );
        assert!(!text.contains('\n'));
    }
}
