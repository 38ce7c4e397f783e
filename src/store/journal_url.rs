//! The journal's URL as it may be shown: one redaction for every form a credential takes in it,
//! used by every log line, error and answer that names the URL. And the PostgreSQL query
//! parameters the driver understands: any other it would ignore with a warning that prints the
//! parameter's value (sqlx-postgres `options/parse.rs`), so it is refused before it gets there.

/// What replaces a secret.
const REDACTED: &str = "REDACTED";

/// The query parameters sqlx-postgres 0.9 reads (`PgConnectOptions::parse_from_url`); `options[…]`
/// is matched by its prefix.
const POSTGRES_PARAMETERS: [&str; 17] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
];

/// Whether a query parameter's value is a credential: `password`, libpq's `sslpassword`, or any
/// other that calls itself a secret or a token.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token"].iter().any(|s| key.contains(s))
}

/// `url` with every credential replaced: the password beside the user name, and the values of
/// password-like query parameters. A URL that does not parse, or has no `//` and is not
/// SQLite's (it may hold a password anywhere), is shown as its scheme alone:
/// `postgres://<unparsable>`, or `<unparsable>`.
pub fn redact_url(url: &str) -> String {
    let mut parsed = match url::Url::parse(url) {
        // `sqlite:j.db` has no authority, but `u:hunter2@db` only looks like a URL.
        Ok(parsed) if !parsed.cannot_be_a_base() || parsed.scheme() == "sqlite" => parsed,
        _ => {
            return match url.split_once("://") {
                Some((scheme, _)) if is_scheme(scheme) => format!("{scheme}://<unparsable>"),
                _ => "<unparsable>".to_owned(),
            };
        }
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(REDACTED));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    REDACTED.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // A fragment is never part of a connection; it could still hold anything.
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(REDACTED));
    }
    parsed.to_string()
}

/// RFC 3986's scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// For a `postgres://` URL, the first query parameter the driver would ignore, with what it
/// reads instead; `None` when every one is understood (or the URL is not PostgreSQL's).
pub fn unsupported_postgres_parameter(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    let unknown = parsed.query_pairs().map(|(k, _)| k).find(|k| {
        !POSTGRES_PARAMETERS.contains(&k.as_ref())
            && !k.as_ref().starts_with("options")
            && !k.is_empty()
    })?;
    Some(format!(
        "query parameter {unknown:?} is not one the PostgreSQL driver reads (it reads {} and \
         options[…])",
        POSTGRES_PARAMETERS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_credential_is_redacted() {
        for (url, shown) in [
            (
                "postgres://rotator:hunter2@db:5432/journal",
                "postgres://rotator:REDACTED@db:5432/journal",
            ),
            (
                "postgres://rotator@db/journal?password=hunter2&sslmode=require",
                "postgres://rotator@db/journal?password=REDACTED&sslmode=require",
            ),
            (
                "postgresql://db/j?sslpassword=hunter2&sslkey=/etc/key.pem",
                "postgresql://db/j?sslpassword=REDACTED&sslkey=%2Fetc%2Fkey.pem",
            ),
            (
                "postgres://db/j?PASSWORD=hunter2&api_token=hunter2&client-secret=hunter2",
                "postgres://db/j?PASSWORD=REDACTED&api_token=REDACTED&client-secret=REDACTED",
            ),
            (
                "sqlite:///var/lib/j.db?password=hunter2",
                "sqlite:///var/lib/j.db?password=REDACTED",
            ),
            ("postgres://db/j#hunter2", "postgres://db/j#REDACTED"),
            // Unparsable: a bad port, a space in the password, no URL at all.
            (
                "postgres://u:hunter2@db:notaport/j",
                "postgres://<unparsable>",
            ),
            ("postgres://u:hun ter2@[db/j", "postgres://<unparsable>"),
            ("u:hunter2@db/j", "<unparsable>"),
            ("hunter2 postgres://x", "<unparsable>"),
            // Nothing secret: unchanged.
            ("sqlite:///var/lib/j.db", "sqlite:///var/lib/j.db"),
            (
                "sqlite:j.db?password=hunter2",
                "sqlite:j.db?password=REDACTED",
            ),
            (
                "postgres://rotator@db:5432/journal",
                "postgres://rotator@db:5432/journal",
            ),
        ] {
            let redacted = redact_url(url);
            assert_eq!(redacted, shown, "{url}");
            assert!(!redacted.contains("hunter2"), "{url}: {redacted}");
        }
    }

    #[test]
    fn parameters_the_driver_would_ignore_are_named_without_their_value() {
        let problem =
            unsupported_postgres_parameter("postgres://db/j?sslpassword=hunter2").expect("refused");
        assert!(problem.contains("\"sslpassword\""), "{problem}");
        assert!(!problem.contains("hunter2"), "{problem}");
        for fine in [
            "postgres://db/j?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
            "postgres://db/j?password=x&options[statement_timeout]=5s",
            "postgres://db/j",
            "sqlite:///j.db?mode=rwc",
        ] {
            assert_eq!(unsupported_postgres_parameter(fine), None, "{fine}");
        }
    }
}
