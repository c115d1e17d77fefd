//! Running a model over prepared cases and scoring it: per-case probabilities
//! of each branch and of the ensemble, the share of attention inside the
//! infection mask, and the metrics overall and by infection-size band.

use anyhow::Context;
use burn::prelude::*;
use dsan_ct::model::{Dsan, DsanConfig};
use dsan_ct::preprocess::area_mean;
use serde::{Deserialize, Serialize};

use super::bootstrap::{self, MetricIntervals, intervals};
use crate::data::dataset::PreparedCase;
use crate::data::sampler::{SizeBand, SizeBands};
use crate::evaluation::metrics::{
    BinaryMetrics, ReliabilityBin, RocPoint, binary_metrics, reliability, roc_curve,
};

/// Cases per forward pass when scoring.
const EVAL_BATCH: usize = 2;

/// What the model said about one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePrediction {
    /// From `labels.csv`.
    pub case_id: String,
    /// From `labels.csv`.
    pub patient_id: String,
    /// True class index.
    pub label: usize,
    /// Softmax of branch U.
    pub uniform: Vec<f64>,
    /// Softmax of branch B.
    pub balanced: Vec<f64>,
    /// Mean of the two.
    pub ensemble: Vec<f64>,
    /// Share of the ensemble attention (feature grid) inside the infection
    /// mask, when the case has one: `sum(A * M) / sum(A)`.
    pub attention_in_mask: Option<f64>,
    /// Infected volume / lung volume, when known.
    pub infection_ratio: Option<f64>,
}

fn floats<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> anyhow::Result<Vec<f64>> {
    let data = tensor.into_data().convert::<f32>();
    let values = data
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading a tensor back: {e:?}"))?;
    Ok(values.into_iter().map(f64::from).collect())
}

/// The model's input batch `[N, 1, D, H, W]` for `inputs` on `grid`.
pub fn input_tensor<B: Backend>(
    inputs: Vec<f32>,
    n: usize,
    grid: [usize; 3],
    device: &B::Device,
) -> Tensor<B, 5> {
    let [d, h, w] = grid;
    Tensor::from_data(TensorData::new(inputs, [n, 1, d, h, w]), device)
}

/// Runs `model` (no augmentation) over `cases`.
pub fn predict_cases<B: Backend>(
    model: &Dsan<B>,
    config: &DsanConfig,
    cases: &[&PreparedCase],
    device: &B::Device,
) -> anyhow::Result<Vec<CasePrediction>> {
    let classes = config.num_classes;
    let feature_grid = config.feature_grid();
    let cells: usize = feature_grid.iter().product();
    let mut out = Vec::with_capacity(cases.len());
    for chunk in cases.chunks(EVAL_BATCH) {
        let n = chunk.len();
        let inputs = chunk.iter().flat_map(|c| c.input.iter().copied()).collect();
        let output = model.forward(input_tensor::<B>(inputs, n, config.input, device));
        let uniform = floats(output.uniform_probabilities).context("branch U")?;
        let balanced = floats(output.balanced_probabilities).context("branch B")?;
        let ensemble = floats(output.probabilities).context("ensemble")?;
        let attention = floats(output.attention).context("attention")?;
        for (i, case) in chunk.iter().enumerate() {
            let row = |v: &[f64]| v[i * classes..(i + 1) * classes].to_vec();
            let map = &attention[i * cells..(i + 1) * cells];
            let attention_in_mask = case.infection.as_ref().map(|target| {
                let mask = area_mean(target, config.input, feature_grid);
                let total: f64 = map.iter().sum();
                let inside: f64 = map.iter().zip(&mask).map(|(a, &m)| a * f64::from(m)).sum();
                if total > 0.0 { inside / total } else { 0.0 }
            });
            out.push(CasePrediction {
                case_id: case.case_id.clone(),
                patient_id: case.patient_id.clone(),
                label: case.label,
                uniform: row(&uniform),
                balanced: row(&balanced),
                ensemble: row(&ensemble),
                attention_in_mask,
                infection_ratio: case.summary.infection_ratio,
            });
        }
    }
    Ok(out)
}

/// Metrics of the two branches and the ensemble on one set of cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Branch U.
    pub uniform: BinaryMetrics,
    /// Branch B.
    pub balanced: BinaryMetrics,
    /// Ensemble.
    pub ensemble: BinaryMetrics,
    /// Mean share of attention inside the infection mask (cases with a mask).
    pub attention_in_mask: Option<f64>,
    /// 95 % bootstrap intervals (in `dsan eval`'s evaluations, not per epoch).
    #[serde(default)]
    pub ci95: Option<ModelIntervals>,
}

/// The 95 % bootstrap intervals of the two branches and the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelIntervals {
    /// Branch U.
    pub uniform: MetricIntervals,
    /// Branch B.
    pub balanced: MetricIntervals,
    /// Ensemble.
    pub ensemble: MetricIntervals,
}

/// Metrics of `predictions` for the class `positive` at `threshold`.
pub fn score(predictions: &[CasePrediction], positive: usize, threshold: f64) -> ModelMetrics {
    let truth: Vec<bool> = predictions.iter().map(|p| p.label == positive).collect();
    let metrics = |pick: fn(&CasePrediction) -> &Vec<f64>| {
        let scores: Vec<f64> = predictions.iter().map(|p| pick(p)[positive]).collect();
        binary_metrics(&scores, &truth, threshold)
    };
    let shares: Vec<f64> = predictions
        .iter()
        .filter_map(|p| p.attention_in_mask)
        .collect();
    ModelMetrics {
        uniform: metrics(|p| &p.uniform),
        balanced: metrics(|p| &p.balanced),
        ensemble: metrics(|p| &p.ensemble),
        attention_in_mask: (!shares.is_empty())
            .then(|| shares.iter().sum::<f64>() / shares.len() as f64),
        ci95: None,
    }
}

/// [`score`] with the 95 % bootstrap intervals of every metric (the same
/// resamples of the cases for the three models).
fn score_with_intervals(
    predictions: &[CasePrediction],
    positive: usize,
    threshold: f64,
) -> ModelMetrics {
    let truth: Vec<bool> = predictions.iter().map(|p| p.label == positive).collect();
    let of = |pick: fn(&CasePrediction) -> &Vec<f64>| {
        let scores: Vec<f64> = predictions.iter().map(|p| pick(p)[positive]).collect();
        intervals(&scores, &truth, threshold, bootstrap::SEED)
    };
    ModelMetrics {
        ci95: Some(ModelIntervals {
            uniform: of(|p| &p.uniform),
            balanced: of(|p| &p.balanced),
            ensemble: of(|p| &p.ensemble),
        }),
        ..score(predictions, positive, threshold)
    }
}

/// The metrics of a set of predictions overall and within each size band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// All cases.
    pub overall: ModelMetrics,
    /// Tertiles of the infection ratio the bands were cut at.
    pub tertiles: [f64; 2],
    /// Per size band (cases of both classes in that band).
    pub by_size: Vec<(SizeBand, ModelMetrics)>,
    /// Ensemble sensitivity on the positive class's small-infection cases:
    /// the group the size-balanced branch exists for.
    pub small_positive_sensitivity: Option<f64>,
    /// ROC curve of the ensemble.
    pub roc: Vec<RocPoint>,
    /// Reliability (calibration) of the ensemble in 10 bins.
    pub reliability: Vec<ReliabilityBin>,
}

/// Scores `predictions` overall and by size band, the bands cut at `tertiles`
/// (the training set's, so groups mean the same as in training), each metric
/// with its 95 % bootstrap interval.
pub fn evaluate(
    predictions: &[CasePrediction],
    positive: usize,
    threshold: f64,
    tertiles: [f64; 2],
) -> Evaluation {
    let bands: Vec<SizeBand> = predictions
        .iter()
        .map(|p| SizeBands::band_of(tertiles, p.infection_ratio))
        .collect();
    let by_size = [SizeBand::Small, SizeBand::Medium, SizeBand::Large]
        .into_iter()
        .filter_map(|band| {
            let subset: Vec<CasePrediction> = predictions
                .iter()
                .zip(&bands)
                .filter(|(_, b)| **b == band)
                .map(|(p, _)| p.clone())
                .collect();
            (!subset.is_empty()).then(|| (band, score_with_intervals(&subset, positive, threshold)))
        })
        .collect();
    let small_positive: Vec<bool> = predictions
        .iter()
        .zip(&bands)
        .filter(|(p, b)| **b == SizeBand::Small && p.label == positive)
        .map(|(p, _)| p.ensemble[positive] >= threshold)
        .collect();
    let scores: Vec<f64> = predictions.iter().map(|p| p.ensemble[positive]).collect();
    let truth: Vec<bool> = predictions.iter().map(|p| p.label == positive).collect();
    Evaluation {
        roc: roc_curve(&scores, &truth),
        reliability: reliability(&scores, &truth, 10),
        overall: score_with_intervals(predictions, positive, threshold),
        tertiles,
        by_size,
        small_positive_sensitivity: (!small_positive.is_empty()).then(|| {
            small_positive.iter().filter(|&&hit| hit).count() as f64 / small_positive.len() as f64
        }),
    }
}
