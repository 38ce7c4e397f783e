//! The status page's "Tokens (last inventory)": the first [`SHOWN`] tokens of each
//! environment's last inventory as `token-rotator tokens` orders them (nobody renews them first,
//! then by expiry), when each inventory was taken and what each environment's last sweep did. Never a token's value: its id and last 8
//! characters.

use maud::{Markup, html};

use crate::report::status::when;
use crate::report::tokens::{self, Inventories, NONE_TAKEN};

/// Rows on the page; `token-rotator tokens` lists them all.
const SHOWN: usize = 100;

/// `None`: the inventory could not be read (the rest of the page still can).
pub(super) fn section(inventories: Option<&Inventories>, now_ms: i64) -> Markup {
    html! {
        section.inventory aria-labelledby="tokens-heading" {
            h2 #tokens-heading { "Tokens (last inventory)" }
            @match inventories {
                None => p.state role="status" { "The last inventory could not be read from the journal." },
                Some(inventories) if inventories.taken.is_empty() => p.state { (NONE_TAKEN) },
                Some(inventories) => {
                    ul.taken { @for t in &inventories.taken {
                        li { (t.environment) ": taken "
                            time datetime=(when(Some(t.taken_at_ms))) { (when(Some(t.taken_at_ms))) " UTC" }
                            " (" (tokens::relative(Some(t.taken_at_ms), now_ms)) "), " (t.tokens) " token(s)" }
                    } }
                    @if !inventories.sweeps.is_empty() {
                        ul.sweeps { @for sweep in &inventories.sweeps {
                            li { (sweep.environment) ": " (tokens::sweep_line(sweep, now_ms)) }
                        } }
                    }
                    @let total = inventories.tokens.len();
                    p { (total.min(SHOWN)) " of " (total) " tokens: those nobody renews first, then by expiry"
                        @if total > SHOWN { "; " code { "token-rotator tokens" } " lists them all" } "." }
                    table.tokens {
                        thead { tr {
                            th scope="col" { "environment" } th scope="col" { "api_user" } th scope="col" { "application" }
                            th scope="col" { "id" } th scope="col" { "last 8" } th scope="col" { "expires" }
                            th scope="col" { "state" } th scope="col" { "renewed by" }
                        } }
                        tbody {
                            @for t in inventories.tokens.iter().take(SHOWN) {
                                @let notes = tokens::notes(t);
                                tr data-state=(tokens::state(t)) {
                                    td { (t.environment) }
                                    td.trunc title=(t.api_user) { (t.api_user) }
                                    td.trunc title=(t.application) { (t.application) }
                                    td { (t.token_id) }
                                    td { code { (t.last8) } }
                                    td { @match t.expires_at_ms {
                                        Some(at) => time datetime=(when(Some(at))) title={ (when(Some(at))) " UTC" } { (tokens::relative(Some(at), now_ms)) },
                                        None => "never",
                                    } }
                                    td { (tokens::state(t)) @if !notes.is_empty() { " (" (notes) ")" } }
                                    td.renewer[t.renewed_by.is_none()] { (tokens::renewer(t)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
