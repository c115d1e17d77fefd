//! `dsan eval`: a trained model scored on a labelled data folder.

use std::path::Path;

use anyhow::Context;
use burn::prelude::Backend as BurnBackend;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::pipeline::positive_class;
use dsan_ct::weights::load_model_files;

use super::evaluate::{evaluate, predict_cases};
use super::plots::{write_reliability, write_roc};
use super::report::{markdown_report, summarize};
use crate::compute::{Backend, OnBackend};
use crate::data::dataset::PreparedCase;
use crate::data::sampler::SizeBands;
use crate::training::command::{DataSource, read_dataset};

/// `dsan eval`: scores a trained model (card + weights) on a labelled data folder.
pub fn eval_command(
    card: &Path,
    source: &DataSource,
    out: &Path,
    backend: Backend,
) -> anyhow::Result<()> {
    backend.execute(EvalTask { card, source, out })
}

struct EvalTask<'a> {
    card: &'a Path,
    source: &'a DataSource,
    out: &'a Path,
}

impl OnBackend for EvalTask<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        eval_on::<B::InnerBackend>(self.card, self.source, self.out, device)
    }
}

fn eval_on<B: BurnBackend>(
    card_path: &Path,
    source: &DataSource,
    out: &Path,
    device: B::Device,
) -> anyhow::Result<()> {
    let (card, model) = load_model_files::<B>(card_path, &device)?;
    let dataset = read_dataset(
        source,
        &card.classes,
        &card.preprocessing,
        card.architecture.input,
    )?;
    let data = &source.dir;
    let cases: Vec<&PreparedCase> = dataset.iter().collect();
    let predictions = predict_cases(&model, &card.architecture, &cases, &device)?;
    let positive = positive_class(&card.classes).unwrap_or(card.classes.len() - 1);
    let ratios: Vec<Option<f64>> = cases.iter().map(|c| c.summary.infection_ratio).collect();
    let tertiles = SizeBands::from_ratios(&ratios).tertiles;
    let evaluation = evaluate(&predictions, positive, 0.5, tertiles);
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let rows = summarize(std::slice::from_ref(&evaluation));
    std::fs::write(
        out.join("metrics.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "model": card.name,
            "data": data.display().to_string(),
            "cases": cases.len(),
            "evaluation": evaluation,
            "predictions": predictions,
        }))?,
    )?;
    write_roc(&out.join("roc.png"), &predictions, positive)?;
    write_reliability(&out.join("calibration.png"), &predictions, positive)?;
    std::fs::write(
        out.join("report.md"),
        markdown_report(
            &rows,
            &format!(
                "{} on {} ({} cases)",
                card.name,
                data.display(),
                cases.len()
            ),
        ),
    )?;
    println!("{}", serde_json::to_string_pretty(&evaluation)?);
    Ok(())
}
