//! A port of Rails' `String#parameterize` (ActiveSupport 7), which Signon uses to name the
//! Secret a token is synced to: `"signon-token-#{api_user.name}-#{application.name}".parameterize`.
//!
//! ```ruby
//! parameterized = transliterate(string)                 # é → e; unknown → "?"
//! parameterized.gsub!(/[^a-z0-9\-_]+/i, "-")
//! parameterized.gsub!(/-{2,}/, "-")
//! parameterized.gsub!(/^-|-$/i, "")
//! parameterized.downcase!
//! ```

/// `I18n.transliterate`'s default approximations for the Latin letters people's and
/// organisations' names use; anything else becomes `?` (and then a separator), as in Rails.
fn transliterate(c: char) -> &'static str {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'ţ' | 'ť' | 'ŧ' => "t",
        'Þ' => "Th",
        'þ' => "th",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => "?",
    }
}

pub fn parameterize(input: &str) -> String {
    let transliterated: String = input
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                transliterate(c).to_owned()
            }
        })
        .collect();
    // gsub(/[^a-z0-9\-_]+/i, "-")
    let mut replaced = String::with_capacity(transliterated.len());
    let mut in_run = false;
    for c in transliterated.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            replaced.push(c);
            in_run = false;
        } else if !in_run {
            replaced.push('-');
            in_run = true;
        }
    }
    // gsub(/-{2,}/, "-")
    let mut collapsed = String::with_capacity(replaced.len());
    for c in replaced.chars() {
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
        // Names and Secrets from govuk-helm-charts (reference/signon.md §3.2) and Signon.
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

    #[test]
    fn rails_edge_cases() {
        let cases = [
            ("Crème Brûlée", "creme-brulee"),
            ("  --Leading and trailing--  ", "leading-and-trailing"),
            ("snake_case stays", "snake_case-stays"),
            ("a -- b", "a-b"),
            ("Straße", "strasse"),
            ("日本 app", "app"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(parameterize(input), expected, "{input:?}");
        }
    }
}
