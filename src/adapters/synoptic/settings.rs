//! `[synoptic]` as the adapter is built from it; `config` parses the file into it.

use std::time::Duration;

/// `[synoptic]`; the private API key comes from `TOKEN_ROTATOR_SYNOPTIC_API_KEY(_FILE)`.
#[derive(Debug, Clone)]
pub struct SynopticSettings {
    pub url: String,
    /// Which credential endpoint, each with its own way of sending the private key.
    pub credential_api: CredentialApi,
    /// A data request that needs a token and always has data; `token=` is added.
    pub verify_path: String,
    pub timeout: Duration,
    /// How long a disabled token may go on answering before it counts as not disabled.
    pub disable_propagation: Duration,
}

impl SynopticSettings {
    /// The defaults, at `url`.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            credential_api: CredentialApi::Current,
            verify_path: DEFAULT_VERIFY_PATH.into(),
            timeout: DEFAULT_TIMEOUT,
            disable_propagation: DEFAULT_DISABLE_PROPAGATION,
        }
    }
}

/// The same bound as every other upstream's default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// SynopticPy's own token check asks for station WBB, which always has metadata.
pub const DEFAULT_VERIFY_PATH: &str = "/v2/stations/metadata?stid=WBB";
/// The issue reads Synoptic as "under 60 s to stop answering globally"; a minute it is.
pub const DEFAULT_DISABLE_PROPAGATION: Duration = Duration::from_secs(60);

/// Synoptic's two documented credential endpoints; never a mix of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialApi {
    /// `/auth/v2/` with `Authorization: Bearer <key>` (docs.synopticdata.com/account/credential-api).
    Current,
    /// `/v2/auth?apikey=<key>` (developers.synopticdata.com/mesonet/v2/auth/): the key is in
    /// the URL, so only for accounts that cannot use the current one.
    Legacy,
}
