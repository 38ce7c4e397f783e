//! The Secret a consumer reads its token from: `<name>` in the configured namespace, key
//! `bearer_token`, written with server-side apply as field manager `token-rotator`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};

use super::{Cluster, UPSTREAM};
use crate::adapters::{AdapterError, Distributor, Permit, Placement};

pub const FIELD_MANAGER: &str = "token-rotator";
pub const TOKEN_KEY: &str = "bearer_token";
pub const ROTATION_ANNOTATION: &str = "token-rotator.alphagov.co.uk/rotation-id";

/// Puts a token in its Secret with server-side apply (field manager `token-rotator`, forced:
/// Signon's sync owns `bearer_token` as `signon`, and we take it over).
#[derive(Clone)]
pub struct SecretDistributor {
    cluster: Cluster,
}

impl SecretDistributor {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// The decoded value of `key` in Secret `name`; `None` when either is missing.
    pub async fn read_key(
        &self,
        name: &str,
        key: &str,
    ) -> Result<Option<SecretString>, AdapterError> {
        read_key(&self.cluster, name, key).await
    }
}

/// Reads one key of a Secret in the cluster's namespace.
pub(super) async fn read_key(
    cluster: &Cluster,
    name: &str,
    key: &str,
) -> Result<Option<SecretString>, AdapterError> {
    let secrets: Api<Secret> = cluster.api(cluster.namespace());
    let secret = cluster
        .timed(&format!("get secrets/{name}"), secrets.get_opt(name))
        .await?;
    let Some(secret) = secret else {
        return Ok(None);
    };
    let value = secret
        .data
        .and_then(|mut data| data.remove(key))
        .map(|bytes| String::from_utf8(bytes.0))
        .transpose()
        .map_err(|_| AdapterError::permanent(UPSTREAM, format!("{name}.{key} is not UTF-8")))?;
    Ok(value.map(SecretString::from))
}

/// Server-side apply of `bearer_token` = `value`, annotated with the rotation.
pub(super) async fn apply(
    cluster: &Cluster,
    name: &str,
    value: &SecretString,
    rotation_id: &str,
) -> Result<(), AdapterError> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
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
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let secrets: Api<Secret> = cluster.api(cluster.namespace());
    cluster
        .timed(
            &format!("patch (apply) secrets/{name}"),
            secrets.patch(name, &params, &Patch::Apply(&secret)),
        )
        .await?;
    Ok(())
}

/// The words of both Secret distributors: the Secret Signon's sync would write, named after the
/// API user and application (`signon-token-<user>-<app>`, `parameterize::secret_name`).
macro_rules! secret_words {
    () => {
        fn upstream(&self) -> &'static str {
            super::UPSTREAM
        }

        fn describe(&self, placement: &Placement) -> String {
            format!("Secret `{}`", placement.name)
        }

        fn placement(&self, listing: &crate::adapters::TokenListing) -> Placement {
            Placement {
                name: crate::domain::parameterize::secret_name(
                    &listing.api_user_name,
                    &listing.application_name,
                ),
            }
        }
    };
}
pub(super) use secret_words;

#[async_trait]
impl Distributor for SecretDistributor {
    secret_words!();

    fn plan(&self, placement: &Placement) -> String {
        format!(
            "apply Secret {} key {TOKEN_KEY} (field manager {FIELD_MANAGER}) and read it back",
            placement.name
        )
    }

    fn placed_how(&self) -> &'static str {
        "was written (server-side apply)"
    }

    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        read_key(&self.cluster, &placement.name, TOKEN_KEY).await
    }

    async fn place(
        &self,
        _permit: &Permit,
        placement: &Placement,
        value: Option<&SecretString>,
        rotation_id: &str,
    ) -> Result<(), AdapterError> {
        let value = value.ok_or_else(|| {
            AdapterError::permanent(
                UPSTREAM,
                format!(
                    "Secret {} does not hold the new token and token-rotator does not have it to write; \
                     use distribution = \"sync\" to let Signon's sync put it there",
                    placement.name
                ),
            )
        })?;
        apply(&self.cluster, &placement.name, value, rotation_id).await
    }
}
