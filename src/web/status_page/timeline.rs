//! The expiry timeline: known tokens per week for the next twelve weeks, as inline SVG drawn on
//! the server (no script), stacked by whether a rotation covers them. The same numbers follow
//! as a table, so neither colour nor the picture is the only way to read them.

use maud::{Markup, PreEscaped, html};

use std::collections::BTreeSet;

use super::overview::{Cover, Expiring, Source};
use crate::domain::target_key;
use crate::store::inventory::InventoryRow;

/// Every cover but `Done` is drawn.
const COVERS: usize = Cover::ALL.len();
const DRAWN: usize = COVERS - 1;
const WEEKS: usize = 12;
const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
const BAR: u32 = 40;
const HEIGHT: u32 = 120;

/// Counts per week and cover; tokens already expired count in the first week. Every token of
/// the last inventory counts (as the `token_rotator_tokens_expiring` gauge does), once: one a
/// rotation knows by id is counted as that rotation's, and a firing alert's estimate gives way
/// to the inventory's expiry of the same pair.
fn buckets(
    expiring: &[Expiring<'_>],
    inventoried: &[InventoryRow],
    now_ms: i64,
) -> [[u32; COVERS]; WEEKS] {
    let mut weeks = [[0u32; COVERS]; WEEKS];
    let mut count = |at_ms: i64, cover: Cover| {
        let week = ((at_ms - now_ms).max(0) / WEEK_MS) as usize;
        if let Some(w) = weeks.get_mut(week) {
            w[cover as usize] += 1;
        }
    };
    let key = |e: &str, u: &str, a: &str| target_key(e, u, a);
    let inventoried_pairs: BTreeSet<String> = inventoried
        .iter()
        .map(|t| key(&t.environment, &t.api_user, &t.application))
        .collect();
    let mut known: BTreeSet<(&str, &str)> = BTreeSet::new();
    for e in expiring.iter().filter(|e| e.cover != Cover::Done) {
        let r = e.rotation;
        if e.source == Source::Alert
            && inventoried_pairs.contains(&key(&r.environment, &r.api_user, &r.application))
        {
            continue;
        }
        count(e.at_ms, e.cover);
    }
    for e in expiring {
        let r = e.rotation;
        for id in [&r.old_token_id, &r.new_token_id].into_iter().flatten() {
            known.insert((r.environment.as_str(), id.as_str()));
        }
    }
    for t in inventoried {
        if known.contains(&(t.environment.as_str(), t.token_id.as_str())) {
            continue;
        }
        if let Some(at_ms) = t.expires_at_ms {
            let cover = if t.renewed_by.is_some() {
                Cover::Renewed
            } else {
                Cover::Missing
            };
            count(at_ms, cover);
        }
    }
    weeks
}

pub(super) fn timeline(
    expiring: &[Expiring<'_>],
    inventoried: &[InventoryRow],
    now_ms: i64,
) -> Markup {
    let weeks = buckets(expiring, inventoried, now_ms);
    let most = weeks
        .iter()
        .map(|w| w.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let width = BAR * WEEKS as u32;
    html! {
        section.panel aria-labelledby="tl-h" {
            h2 #tl-h { "Expiring in the next 12 weeks" }
            @if weeks.iter().flatten().all(|n| *n == 0) {
                p { "No known token expires in the next 12 weeks without a finished rotation (from rotations and the last inventory)." }
            }
            svg.timeline viewBox={ "0 0 " (width) " " (HEIGHT + 16) } role="img"
                aria-labelledby="tl-h" preserveAspectRatio="xMinYMin meet" {
                @for (i, w) in weeks.iter().enumerate() {
                    (PreEscaped(bar(i, w, most)))
                    text x=(i as u32 * BAR + BAR / 2) y=(HEIGHT + 13) text-anchor="middle" { "w" (i + 1) }
                }
            }
            ul.legend { @for c in Cover::ALL.iter().filter(|c| **c != Cover::Done) {
                li { span class={ "sw v-" (c.word().replace(' ', "-")) } {} " " (c.word()) }
            } }
            details {
                summary { "the timeline as a table" }
                table {
                    thead { tr { th scope="col" { "week" } @for c in &Cover::ALL[..DRAWN] { th scope="col" { (c.word()) } } } }
                    tbody { @for (i, w) in weeks.iter().enumerate() {
                        tr { th scope="row" { "w" (i + 1) } @for n in &w[..DRAWN] { td { (n) } } }
                    } }
                }
            }
        }
    }
}

/// One week's stacked bar; each segment carries its count as a tooltip (`<title>`). Written as
/// a string: only numbers and this module's own words go in, so there is nothing to escape.
fn bar(week: usize, counts: &[u32; COVERS], most: u32) -> String {
    let mut out = String::new();
    let mut y = HEIGHT;
    for cover in &Cover::ALL[..DRAWN] {
        let n = counts[*cover as usize];
        if n == 0 {
            continue;
        }
        let h = (n * HEIGHT / most).max(2);
        y -= h.min(y);
        out.push_str(&format!(
            "<rect class=\"v-{}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{h}\"><title>week {}: {n} {}</title></rect>",
            cover.word().replace(' ', "-"),
            week as u32 * BAR + 4,
            BAR - 8,
            week + 1,
            cover.word(),
        ));
    }
    out
}
