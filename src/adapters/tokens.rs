//! What issuers say about tokens: listings, freshly made tokens, inventories and whom their
//! lookups matched. Never a token's value, except a minted one's while it is handed on.

use jiff::Timestamp;
use secrecy::SecretString;

use crate::domain::Target;
use crate::domain::parameterize;

/// A live token as the issuer lists it; never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub expires_at: Timestamp,
    /// The last 8 characters, as Signon's UI shows them.
    pub last8: String,
}

/// Whom and what an issuer's lookups found for a target's names, spelled as the issuer stores
/// them. An issuer whose lookup ignores case (or also takes a name's slug) may find a spelling
/// other than the one asked for; it says which, and the engine compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The user, as the issuer stores its email.
    pub api_user: String,
    /// The application, as the issuer names it.
    pub application: String,
}

impl Resolved {
    /// Whether these are exactly the names `target` gives, character for character: the user as
    /// the target spells it, the application by the name the target gives or by exactly that
    /// name's slug (the form metric labels carry). Never by another spelling of either.
    pub fn is_exactly(&self, target: &Target) -> bool {
        let application = target.application.as_str();
        self.api_user == target.api_user.as_str()
            && (self.application == application
                || parameterize::parameterize(&self.application) == application)
    }
}

/// What the issuer knows about a target before anything changes.
#[derive(Debug, Clone)]
pub struct TokenListing {
    /// The API user's display name (Secrets are named after it, not the email).
    pub api_user_name: String,
    /// The server application's OAuth client id, for verification.
    pub application_uid: String,
    /// The application's name as the issuer spells it.
    pub application_name: String,
    pub tokens: Vec<TokenInfo>,
    /// What the issuer's lookups matched; `None` when it looks names up exactly, so that there
    /// is nothing to compare.
    pub resolved: Option<Resolved>,
}

impl TokenListing {
    /// The listed token `value` ends with the last 8 characters of, if any lists them.
    pub fn by_last8(&self, value: &SecretString) -> Option<TokenInfo> {
        use secrecy::ExposeSecret;
        let value = value.expose_secret();
        self.tokens
            .iter()
            .find(|t| !t.last8.is_empty() && value.ends_with(&t.last8))
            .cloned()
    }

    /// The listing one pair's inventoried tokens make, as `list` would have given it when the
    /// inventory was taken: the live ones, the one expiring last at the end. `None` when there
    /// are none, or the issuer did not report the user's display name and application's id.
    pub fn from_inventory<'a>(
        pair: impl IntoIterator<Item = &'a InventoriedToken>,
    ) -> Option<Self> {
        let mut pair = pair.into_iter().peekable();
        let first = pair.peek()?;
        // The inventory reports each pair under its stored spellings: what a lookup by another
        // spelling would have matched, for the engine to compare as it compares a listing's.
        let (api_user_name, application_uid) =
            (first.api_user_name.clone()?, first.application_uid.clone()?);
        let resolved = Resolved {
            api_user: first.api_user.clone(),
            application: first.application.clone(),
        };
        let mut tokens: Vec<TokenInfo> = pair
            .filter(|t| !t.expired)
            .filter_map(|t| {
                Some(TokenInfo {
                    id: t.id.clone(),
                    expires_at: t.expires_at?,
                    last8: t.last8.clone(),
                })
            })
            .collect();
        // Stable: tokens expiring together stay in the inventory's order (by id).
        tokens.sort_by_key(|t| t.expires_at);
        Some(TokenListing {
            api_user_name,
            application_uid,
            application_name: resolved.application.clone(),
            resolved: Some(resolved),
            tokens,
        })
    }
}

/// A freshly made token.
#[derive(Debug)]
pub struct MintedToken {
    pub id: String,
    pub expires_at: Timestamp,
    pub value: MintedValue,
    /// Whom and what the issuer made it for, as its lookups matched them (see
    /// [`TokenListing::resolved`]); `None` when it looks names up exactly.
    pub resolved: Option<Resolved>,
}

/// Whether the issuer let the value out.
#[derive(Debug)]
pub enum MintedValue {
    /// It did (the HTTP contract): it exists only here and, sealed, in the journal, until
    /// token-rotator puts it in the Secret.
    Held(SecretString),
    /// It did not (a Job in Signon's image): the Job put it in the Secret, or Signon's sync will.
    /// Known by its SHA-256 and last 8 characters, which is enough to recognise it there.
    Withheld { sha256: String, last8: String },
}

/// What [`super::Issuer::check_identity`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityReport {
    /// What was checked, as a sentence for `/readyz` and the status page.
    pub checked: String,
    /// Accepted now, but it will stop working: a person should act before it does.
    pub warning: Option<String>,
}

/// Every token an issuer still honours or reports, of every user it issues for: what
/// [`super::Issuer::inventory`] found. Never a token's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub tokens: Vec<InventoriedToken>,
}

/// One token of an [`Inventory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoriedToken {
    /// The user the token acts as, as alerts name it (an email).
    pub api_user: String,
    /// The user's display name, if the issuer reports one (Secrets are named after it).
    pub api_user_name: Option<String>,
    /// The application it is for, as the issuer names it.
    pub application: String,
    /// The application's client id, if the issuer reports one (verification checks it).
    pub application_uid: Option<String>,
    pub id: String,
    pub created_at: Option<Timestamp>,
    /// `None`: it never expires.
    pub expires_at: Option<Timestamp>,
    /// Past its expiry but never revoked: dead, and still reported.
    pub expired: bool,
    /// The token of its (user, application) pair that consumers are given; any other is
    /// superseded.
    pub newest: bool,
    /// The last 8 characters, as the issuer's UI shows them.
    pub last8: String,
    /// Its user is suspended.
    pub suspended: bool,
    /// Its application is retired.
    pub retired: bool,
    /// Who makes the pair a new token before this one expires, without token-rotator, in the
    /// issuer's words ("Signon (nightly)"); `None`: nobody does.
    pub renewed_by: Option<String>,
}
