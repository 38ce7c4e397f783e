//! The distributor of a handover target: nothing is written; the engine hands the token to its
//! owner through a one-time link (`crate::engine::handover`).

use async_trait::async_trait;
use secrecy::SecretString;

use super::{AdapterError, Distributor, Permit, Placement, TokenListing};

/// The distributor of a handover target: nothing is written; the engine hands the token over.
pub struct Handed;

#[async_trait]
impl Distributor for Handed {
    fn upstream(&self) -> &'static str {
        "handover"
    }

    fn describe(&self, _placement: &Placement) -> String {
        "the hands of its owner (a one-time link)".to_owned()
    }

    fn plan(&self, _placement: &Placement) -> String {
        "hand the token to its owner through a one-time link sent as a Slack direct message"
            .to_owned()
    }

    fn placed_how(&self) -> &'static str {
        "was handed over"
    }

    fn placement(&self, listing: &TokenListing) -> Placement {
        Placement {
            name: format!("handover of {}", listing.api_user_name),
        }
    }

    async fn read(&self, _placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        Ok(None)
    }

    async fn place(
        &self,
        _permit: &Permit,
        _placement: &Placement,
        _value: Option<&SecretString>,
        _rotation_id: &str,
    ) -> Result<(), AdapterError> {
        Err(AdapterError::permanent(
            "handover",
            "a handed-over token is not written anywhere",
        ))
    }
}
