//! The Kubernetes Secret a consumer reads its token from: `<name>` in the configured namespace,
//! key `bearer_token`, written with server-side apply as field manager `token-rotator`.
//!
//! kube's built-in retry is off (it would retry 429/5xx for minutes, under our own retries) and
//! every call has a timeout: the engine owns retrying, with its journaled backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};

use super::{AdapterError, Distributor, Observer, Permit, Placement};

const UPSTREAM: &str = "kubernetes";
pub const FIELD_MANAGER: &str = "token-rotator";
pub const TOKEN_KEY: &str = "bearer_token";
pub const ROTATION_ANNOTATION: &str = "token-rotator.alphagov.co.uk/rotation-id";

#[derive(Clone)]
pub struct SecretDistributor {
    secrets: Api<Secret>,
    observer: Observer,
    timeout: Duration,
}

impl SecretDistributor {
    /// A client for the API server at `url` (tests, the demo, or `kubectl proxy`).
    pub fn for_url(url: &str, namespace: &str, timeout: Duration) -> Result<Self, String> {
        let uri = url
            .parse()
            .map_err(|e| format!("kubernetes url {url:?}: {e}"))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = namespace.to_owned();
        config.default_retry = false;
        config.read_timeout = Some(timeout);
        Self::from_config(config, namespace, timeout)
    }

    /// In-cluster service account or kubeconfig, as kubectl would find them.
    pub async fn inferred(namespace: &str, timeout: Duration) -> Result<Self, String> {
        let mut config = kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}"))?;
        config.default_retry = false;
        config.read_timeout = Some(timeout);
        Self::from_config(config, namespace, timeout)
    }

    fn from_config(
        config: kube::Config,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client =
            kube::Client::try_from(config).map_err(|e| format!("kubernetes client: {e}"))?;
        Ok(Self {
            secrets: Api::namespaced(client, namespace),
            observer: Observer::default(),
            timeout,
        })
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    async fn timed<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, AdapterError> {
        let timed = async {
            match tokio::time::timeout(self.timeout, call).await {
                Ok(result) => result.map_err(classify),
                Err(_) => Err(AdapterError::Transient {
                    upstream: UPSTREAM,
                    detail: format!("{what} timed out after {:?}", self.timeout),
                }),
            }
        };
        self.observer.time(UPSTREAM, timed).await
    }
}

fn classify(error: kube::Error) -> AdapterError {
    match error {
        kube::Error::Api(status) => AdapterError::from_status(
            UPSTREAM,
            status.code,
            &format!("{} {}", status.reason, status.message),
        ),
        // Anything below HTTP (connection, TLS, a body we cannot read) may pass.
        other => AdapterError::Transient {
            upstream: UPSTREAM,
            detail: other.to_string(),
        },
    }
}

#[async_trait]
impl Distributor for SecretDistributor {
    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        let secret = self
            .timed("GET secret", self.secrets.get_opt(&placement.name))
            .await?;
        let Some(secret) = secret else {
            return Ok(None);
        };
        let value = secret
            .data
            .and_then(|mut data| data.remove(TOKEN_KEY))
            .map(|bytes| String::from_utf8(bytes.0))
            .transpose()
            .map_err(|_| {
                AdapterError::permanent(
                    UPSTREAM,
                    format!("{}.{TOKEN_KEY} is not UTF-8", placement.name),
                )
            })?;
        Ok(value.map(SecretString::from))
    }

    async fn write(
        &self,
        _permit: &Permit,
        placement: &Placement,
        value: &SecretString,
        rotation_id: &str,
    ) -> Result<(), AdapterError> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(placement.name.clone()),
                annotations: Some(BTreeMap::from([(
                    ROTATION_ANNOTATION.to_owned(),
                    rotation_id.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                TOKEN_KEY.to_owned(),
                ByteString(value.expose_secret().as_bytes().to_vec()),
            )])),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        };
        // force: Signon's sync job owns `bearer_token` as manager `signon`; we take it over.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.timed(
            "apply secret",
            self.secrets
                .patch(&placement.name, &params, &Patch::Apply(&secret)),
        )
        .await?;
        Ok(())
    }
}
