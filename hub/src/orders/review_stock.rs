//! The review page's stock: per product, the lots on hand first expiry
//! first, what approval would take from each (the same FEFO rule, line by
//! line), and for fridge lots what the fridge recorded since the lot arrived.
//! After approval, the lots the order holds show the same cold-chain record.

use super::Line;
use crate::coldchain::history::{self, SinceReceipt};
use crate::inventory::{self, At, Lot};
use crate::store::Db;
use crate::web::fmt_utc;
use maud::{html, Markup};
use rxedge_shared::inventory::{self as rules, Pick, Shortfall};
use std::collections::HashMap;

/// Lots shown per product; FEFO picks from the first ones.
const LOTS_SHOWN: usize = 12;

/// One product of the order with its lots and what approval would take.
pub struct Product {
    /// Name.
    pub name: String,
    /// Packs the order's lines ask for.
    pub wanted: i64,
    /// Lots on hand, first expiry first.
    pub lots: Vec<Lot>,
    /// Packs approval would take per lot id.
    pub takes: HashMap<i64, i64>,
    /// Why approval would fail for this product, if it would.
    pub shortfall: Option<Shortfall>,
}

/// What the stock section shows before approval.
pub struct Plan {
    /// Products in the order of their first line.
    pub products: Vec<Product>,
    /// Cold-chain records of the fridge lots among them.
    pub cold: HashMap<i64, SinceReceipt>,
}

/// Weigh the order's lines against the stock on hand, as approval would.
pub async fn plan(
    db: &Db,
    lines: &[Line],
    at: At,
    min_shelf_life_days: u32,
) -> Result<Plan, sqlx::Error> {
    let mut gtins: Vec<String> = Vec::new();
    for l in lines {
        if !gtins.contains(&l.gtin) {
            gtins.push(l.gtin.clone());
        }
    }
    let all = inventory::on_hand(db, &gtins).await?;
    let mut products = Vec::new();
    for g in &gtins {
        let lots: Vec<Lot> = all
            .iter()
            .filter(|l| l.gtin.as_deref() == Some(g.as_str()))
            .cloned()
            .collect();
        let mut views: Vec<_> = lots.iter().map(Lot::view).collect();
        let mut takes: HashMap<i64, i64> = HashMap::new();
        let mut shortfall = None;
        let mut wanted = 0;
        let mut name = String::new();
        for l in lines.iter().filter(|l| &l.gtin == g) {
            wanted += l.packs;
            name.clone_from(&l.name);
            match rules::allocate_and_hold(&mut views, l.packs, at.today, min_shelf_life_days) {
                Ok(picks) => {
                    for Pick { lot_id, qty } in picks {
                        *takes.entry(lot_id).or_default() += qty;
                    }
                }
                Err(e) => shortfall = shortfall.or(Some(e)),
            }
        }
        // The lots it takes are always shown, then the next ones by expiry.
        let mut shown: Vec<Lot> = Vec::new();
        for l in lots {
            if takes.contains_key(&l.id) || shown.len() < LOTS_SHOWN {
                shown.push(l);
            }
        }
        products.push(Product {
            name,
            wanted,
            lots: shown,
            takes,
            shortfall,
        });
    }
    let ids: Vec<i64> = products
        .iter()
        .flat_map(|p| p.lots.iter().map(|l| l.id))
        .collect();
    let cold = history::since_receipt(db, &ids).await?;
    Ok(Plan { products, cold })
}

/// The stock section of a review.
pub fn section(p: &Plan) -> Markup {
    // Room-temperature orders need no cold-chain column.
    let fridge = !p.cold.is_empty();
    let cols = if fridge { "6" } else { "5" };
    html! {
        section #stock data-refresh="order stock" {
            h2 { "Stock for these lines (first expiry first)" }
            table {
                thead { tr { th { "Lot" } th { "Expires" } th { "Where" } th { "Free" } th { "Approval takes" }
                    @if fridge { th { "Cold chain since receipt" } } } }
                @for prod in &p.products {
                    tbody.product {
                        tr.head { td colspan=(cols) {
                            strong { (prod.name) } " · " (prod.wanted) " pack(s) wanted"
                            @if let Some(e) = &prod.shortfall { " · " span.warn { "Approval would fail: " (e.to_string()) } }
                        } }
                        @if prod.lots.is_empty() { tr { td colspan=(cols) { "No lots on hand." } } }
                        @for l in &prod.lots {
                            @let take = prod.takes.get(&l.id).copied().unwrap_or(0);
                            tr class=(if take > 0 { "pick" } else if l.status != "available" { "out" } else { "" }) data-lot=(l.lot) {
                                td { (l.lot) } td { (l.expiry) } td { (l.location) }
                                td.num { (l.quantity - l.reserved) }
                                td.num { @if take > 0 { strong { (take) } } @else if l.status == "on_hold" { "on hold" } @else { "–" } }
                                @if fridge { td.cold { (cold_cell(p.cold.get(&l.id))) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a lot's fridge recorded since the lot arrived, in one cell.
pub fn cold_cell(h: Option<&SinceReceipt>) -> Markup {
    let Some(h) = h else {
        return html! { "–" };
    };
    html! {
        @match (h.min_c, h.max_c) {
            (Some(lo), Some(hi)) => {
                (format!("{lo:.1} to {hi:.1} °C")) " · " (h.readings) " readings since " (fmt_utc(h.received_ms))
            }
            _ => { span.warn { "no readings since " (fmt_utc(h.received_ms)) } }
        }
        br;
        @if h.excursions.is_empty() {
            span.ok { "no excursion" }
        } @else {
            @for (i, x) in h.excursions.iter().enumerate() {
                @if i > 0 { "; " }
                a.out href=(format!("/coldchain/alarms/{}", x.id)) {
                    "excursion " (x.kind.replace('_', " ")) " from " (fmt_utc(x.onset_ms))
                    @if let Some(c) = x.peak_c { (format!(", peak {c:.1} °C")) }
                    " (" (x.state) ")"
                }
            }
        }
    }
}
