//! `rxedge-hub ocr FILE…`: the pipeline from the command line.

use super::vocab::{catalog_vocab, Layered, Vocab};
use super::Pipeline;
use crate::config::Config;
use std::path::Path;

/// The catalog vocabulary from a catalog CSV (the demo catalog when none).
pub fn catalog_from_csv(text: &str) -> anyhow::Result<Vocab> {
    let products = crate::catalog::parse_csv(text, &Default::default()).map_err(|errs| {
        anyhow::anyhow!(
            "catalog: {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok(catalog_vocab(products.iter().map(|p| {
        (
            p.gtin.as_str(),
            p.name.as_str(),
            p.strength.as_str(),
            p.ingredients.as_slice(),
        )
    })))
}

/// Reads a brand → generic list, once.
pub fn drug_names(path: &Path) -> anyhow::Result<Vocab> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut v = Vocab::default();
    v.add_drug_names(&text);
    Ok(v)
}

/// Reads each file and prints one JSON line per file. Returns how many
/// failed (each with its reason in its line).
pub async fn run(
    cfg: &Config,
    files: &[std::path::PathBuf],
    catalog: Option<&Path>,
    names: Option<&Path>,
    with_words: bool,
) -> anyhow::Result<usize> {
    let catalog_text = match catalog {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => include_str!("../../data/demo-catalog.csv").to_string(),
    };
    let cat = catalog_from_csv(&catalog_text)?;
    let names_path = names.map(Path::to_path_buf).or_else(|| {
        (!cfg.ocr.drug_names_file.is_empty()).then(|| cfg.ocr.drug_names_file.clone().into())
    });
    let names = names_path
        .as_deref()
        .map(drug_names)
        .transpose()?
        .unwrap_or_default();
    let ocr = cfg.ocr.clone();
    let max = cfg.ingest.max_image_bytes;
    let files = files.to_vec();
    // The engine is synchronous and CPU-bound: a blocking thread of its own.
    tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut p = Pipeline::from_config(&ocr, max)?;
        let vocab = Layered(vec![&cat, &names]);
        let mut failed = 0;
        for f in &files {
            let line = match std::fs::read(f)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(p.read(&b, &vocab)?))
            {
                Ok(r) => {
                    let mut v = serde_json::to_value(&r)?;
                    v["file"] = serde_json::json!(f.display().to_string());
                    if !with_words {
                        if let Some(o) = v.as_object_mut() {
                            o.remove("words");
                        }
                    }
                    v
                }
                Err(e) => {
                    failed += 1;
                    serde_json::json!({"file": f.display().to_string(), "error": e.to_string()})
                }
            };
            println!("{}", serde_json::to_string(&line)?);
        }
        Ok(failed)
    })
    .await?
}
