//! `dsan cv`: k-fold cross-validation split by patient.

use std::path::Path;

use anyhow::ensure;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::command::{TrainOptions, numbered_devices, split_by_patient};
use super::run::train;
use crate::compute::OnBackend;
use crate::data::dataset::PreparedCase;
use crate::data::folds::patient_folds;
use crate::evaluation::evaluate::{CasePrediction, Evaluation, evaluate, predict_cases};
use crate::evaluation::plots::{write_reliability, write_roc};
use crate::evaluation::report::{SummaryRow, markdown_report, summarize};

/// `dsan cv`: k-fold cross-validation split by patient; each fold trains on
/// the others (with a patient-split validation part for early stopping) and
/// is scored on its held-out cases.
pub fn cv_command(options: &TrainOptions, out: &Path, folds: usize) -> anyhow::Result<()> {
    options.backend.execute(CvTask {
        options,
        out,
        folds,
    })
}

struct CvTask<'a> {
    options: &'a TrainOptions,
    out: &'a Path,
    folds: usize,
}

impl OnBackend for CvTask<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        cv_on::<B>(self.options, self.out, self.folds, device)
    }
}

/// Cross-validation results (cv.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CrossValidation {
    folds: usize,
    per_fold: Vec<Evaluation>,
    summary: Vec<SummaryRow>,
    predictions: Vec<(usize, CasePrediction)>,
}

fn cv_on<B: AutodiffBackend>(
    options: &TrainOptions,
    out: &Path,
    k: usize,
    first: B::Device,
) -> anyhow::Result<()> {
    ensure!(k >= 2, "cross-validation needs at least 2 folds");
    let config = options.config()?;
    let devices = numbered_devices::<B>(first, options.devices)?;
    let device = &devices[0];
    let dataset = options.dataset(&config)?;
    let patients: Vec<String> = dataset.iter().map(|c| c.patient_id.clone()).collect();
    let labels: Vec<usize> = dataset.iter().map(|c| c.label).collect();
    let fold_of = patient_folds(&patients, &labels, k, options.seed);
    let mut per_fold = Vec::new();
    let mut predictions = Vec::new();
    for fold in 0..k {
        let test: Vec<&PreparedCase> = dataset
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f == fold)
            .map(|(c, _)| c)
            .collect();
        let rest: Vec<&PreparedCase> = dataset
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f != fold)
            .map(|(c, _)| c)
            .collect();
        let (train_cases, val_cases) = split_by_patient(&rest, k - 1, options.seed + 1);
        eprintln!(
            "fold {}/{k}: {} training, {} validation, {} test cases",
            fold + 1,
            train_cases.len(),
            val_cases.len(),
            test.len()
        );
        let dir = out.join(format!("fold-{}", fold + 1));
        let outcome = train::<B>(&config, &train_cases, &val_cases, &dir, false, &devices)?;
        let tested = predict_cases(&outcome.model, &config.model, &test, device)?;
        per_fold.push(evaluate(&tested, config.positive, 0.5, outcome.tertiles));
        predictions.extend(tested.into_iter().map(|p| (fold, p)));
    }
    let summary = summarize(&per_fold);
    let report = CrossValidation {
        folds: k,
        per_fold,
        summary,
        predictions,
    };
    std::fs::write(out.join("cv.json"), serde_json::to_vec_pretty(&report)?)?;
    let pooled: Vec<CasePrediction> = report.predictions.iter().map(|(_, p)| p.clone()).collect();
    write_roc(&out.join("roc.png"), &pooled, config.positive)?;
    write_reliability(&out.join("calibration.png"), &pooled, config.positive)?;
    std::fs::write(
        out.join("report.md"),
        markdown_report(
            &report.summary,
            &format!("{k}-fold cross-validation, split by patient"),
        ),
    )?;
    println!("{}", serde_json::to_string_pretty(&report.summary)?);
    Ok(())
}
