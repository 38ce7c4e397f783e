//! A port of Rails' `String#parameterize` (ActiveSupport 6.1–8), which Signon uses to name the
//! Secret a token is synced to: `"signon-token-#{api_user.name}-#{application.name}".parameterize`.
//!
//! ```ruby
//! # active_support/inflector/transliterate.rb
//! I18n.transliterate(tidy_bytes(string).unicode_normalize(:nfc), replacement: "?")
//! parameterized.gsub!(/[^a-z0-9\-_]+/i, "-")
//! parameterized.gsub!(/-{2,}/, "-")
//! parameterized.gsub!(/^-|-$/i, "")
//! parameterized.downcase!
//! ```
//!
//! Checked against real ActiveSupport: `fixtures/parameterize/cases.jsonl` is what Debian's Rails
//! prints (`fixtures/parameterize/generate.rb`), and `.ci/run` regenerates and compares it.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// `I18n::Backend::Transliterator::HashTransliterator::DEFAULT_APPROXIMATIONS` (the i18n gem,
/// `lib/i18n/backend/transliterator.rb`), generated from it; anything else becomes `?` (and then
/// a separator), as in Rails. Characters a person might expect here but the table lacks (`ẞ`,
/// `Ǫ`, `ſ`) are not approximated by Rails either.
fn transliterate(c: char) -> &'static str {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'Æ' => "AE",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'Ð' | 'Ď' | 'Đ' => "D",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        '×' => "x",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'Ý' | 'Ŷ' | 'Ÿ' => "Y",
        'Þ' => "Th",
        'ß' => "ss",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ð' | 'ď' | 'đ' => "d",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'þ' => "th",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' | 'ĸ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ŉ' => "'n",
        'Ŋ' => "NG",
        'ŋ' => "ng",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'ţ' | 'ť' | 'ŧ' => "t",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => "?",
    }
}

pub fn parameterize(input: &str) -> String {
    // NFC and the transliteration leave ASCII as it is: most names are ASCII, and skip both.
    let transliterated: Cow<'_, str> = if input.is_ascii() {
        Cow::Borrowed(input)
    } else {
        let mut out = String::with_capacity(input.len());
        for c in input.nfc() {
            if c.is_ascii() {
                out.push(c);
            } else {
                out.push_str(transliterate(c));
            }
        }
        Cow::Owned(out)
    };
    // gsub(/[^a-z0-9\-_]+/i, "-"), then gsub(/-{2,}/, "-"): a run of separators and dashes,
    // whichever made it, is one dash.
    let mut collapsed = String::with_capacity(transliterated.len());
    for c in transliterated.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    // gsub(/^-|-$/, "") then downcase!
    collapsed.trim_matches('-').to_ascii_lowercase()
}

/// The Secret Signon's sync job writes for this API user and application.
pub fn secret_name(api_user_name: &str, application_name: &str) -> String {
    parameterize(&format!("signon-token-{api_user_name}-{application_name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_become_the_secrets_govuk_has() {
        // Names and Secrets from alphagov/govuk-helm-charts `charts/app-config/values-production.yaml`
        // (the consumers' `secretKeyRef`s) and Signon.
        let cases = [
            (
                "Short URL Manager",
                "Publishing API",
                "signon-token-short-url-manager-publishing-api",
            ),
            (
                "Account API",
                "Email Alert API",
                "signon-token-account-api-email-alert-api",
            ),
            (
                "Publisher",
                "Signon API",
                "signon-token-publisher-signon-api",
            ),
            (
                "Collections",
                "Email Alert API",
                "signon-token-collections-email-alert-api",
            ),
            (
                "Signon API Client (permission and suspension updater)",
                "Content Store",
                "signon-token-signon-api-client-permission-and-suspension-updater-content-store",
            ),
            (
                "GOV.UK Notify",
                "Email Alert API",
                "signon-token-gov-uk-notify-email-alert-api",
            ),
        ];
        for (user, app, expected) in cases {
            assert_eq!(secret_name(user, app), expected, "{user} / {app}");
        }
    }

    /// Every line of `fixtures/parameterize/cases.jsonl` is what real ActiveSupport printed
    /// for that input (`.ci/run` regenerates it with Debian's Rails and compares).
    #[test]
    fn agrees_with_rails_on_every_recorded_case() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/parameterize/cases.jsonl"
        );
        let cases = std::fs::read_to_string(path).unwrap();
        let mut checked = 0;
        for line in cases.lines().filter(|l| !l.trim().is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let (input, rails) = (
                case["input"].as_str().unwrap(),
                case["output"].as_str().unwrap(),
            );
            assert_eq!(parameterize(input), rails, "{input:?}");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} cases");
    }
}
