//! Alert-driven GitLab targets: each token in a file of its own in one directory, named after
//! its owner as GitLab's numeric id and its name (`project-42-deploy-bot.token`, however the
//! alert spelled the project), written as the `file` distributor writes (atomic replace, mode
//! 0600, the previous content kept until the old token is gone).

use std::path::PathBuf;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::adapters::file::FileDistributor;
use crate::adapters::{AdapterError, Distributor, Permit, Placement, TokenListing};
use crate::domain::parameterize::parameterize;

pub struct TokenDir {
    dir: PathBuf,
}

impl TokenDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn file(placement: &Placement) -> FileDistributor {
        FileDistributor::new(&placement.name, 0o600, None)
    }
}

#[async_trait]
impl Distributor for TokenDir {
    fn upstream(&self) -> &'static str {
        "file"
    }

    fn describe(&self, placement: &Placement) -> String {
        format!("file `{}`", placement.name)
    }

    fn plan(&self, placement: &Placement) -> String {
        format!(
            "write file {} (mode 600, atomic replace, the previous content kept until the old token is gone) and read it back",
            placement.name
        )
    }

    fn placed_how(&self) -> &'static str {
        "was written (atomic replace)"
    }

    /// An alert names any owner and token: only one whose file is there, holding the token
    /// GitLab lists, is rotated (GitLab's rotation revokes the old token at once).
    fn requires_token_in_place(&self) -> bool {
        true
    }

    /// `<dir>/<owner>-<name>.token`, both parameterized (`project:42` → `project-42`).
    fn placement(&self, listing: &TokenListing) -> Placement {
        let name = format!(
            "{}-{}.token",
            parameterize(&listing.api_user_name),
            parameterize(&listing.application_name)
        );
        Placement {
            name: self.dir.join(name).display().to_string(),
        }
    }

    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        Self::file(placement).read(placement).await
    }

    async fn place(
        &self,
        permit: &Permit,
        placement: &Placement,
        value: Option<&SecretString>,
        rotation_id: &str,
    ) -> Result<(), AdapterError> {
        Self::file(placement)
            .place(permit, placement, value, rotation_id)
            .await
    }

    async fn settle(&self, placement: &Placement) -> Result<(), AdapterError> {
        Self::file(placement).settle(placement).await
    }
}
