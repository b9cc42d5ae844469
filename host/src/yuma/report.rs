//! `arena yuma`: reading an epoch file and rendering the results for people.

use anyhow::{Result, anyhow};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use super::{EpochInput, EpochResult};

/// Parses an epoch file; errors name the line, column and field path.
pub fn parse(text: &str, name: &str) -> Result<EpochInput> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        anyhow!("{name}:{}:{}: field `{}`: {inner}", inner.line(), inner.column(), e.path())
    })
}

/// One table per epoch: per uid, stake, permit, consensus, trust, incentive, dividends, emission.
pub fn render(results: &[EpochResult], emission: u64) -> String {
    let mut out = String::new();
    for (k, r) in results.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(&format!("epoch {} at block {} ({} rao emitted)\n", k + 1, r.block, emission));
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "uid",
            "active",
            "permit",
            "stake",
            "consensus",
            "v-trust",
            "incentive",
            "dividends",
            "miner rao",
            "validator rao",
            "bonds (uid:u16)",
        ]);
        for u in &r.uids {
            let bonds = u.bonds.iter().map(|(j, v)| format!("{j}:{v}")).collect::<Vec<_>>().join(" ");
            table.add_row(vec![
                Cell::new(u.uid),
                Cell::new(if u.active { "yes" } else { "no" }),
                Cell::new(if u.validator_permit { "yes" } else { "no" }),
                Cell::new(format!("{:.6}", u.stake)),
                Cell::new(format!("{:.6}", u.consensus)),
                Cell::new(format!("{:.6}", u.validator_trust)),
                Cell::new(format!("{:.6}", u.incentive)),
                Cell::new(format!("{:.6}", u.dividends)),
                Cell::new(u.server_emission),
                Cell::new(u.validator_emission),
                Cell::new(bonds),
            ]);
        }
        for col in 3..10 {
            if let Some(c) = table.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&table.to_string());
        out.push('\n');
    }
    out
}
