//! One deterministic path from a CT [`Volume`] to a [`Diagnosis`], shared by
//! the page and `dsan predict`: lung mask, crop and resample, inference with
//! both branches, and the attention, read on the volume's voxels plane by
//! plane where it is shown.
//!
//! [`diagnose`] is async and never blocks on the GPU (WebGPU reads are
//! awaited); a [`ProgressSink`] hears about every stage and may yield to the
//! browser between them.

mod inference;

use std::future::Future;

use burn::prelude::*;
use web_time::Instant;

pub use inference::{BothBranches, Branch, BranchResult, Inference, run_branch};

use crate::model::Dsan;
use crate::preprocess::{GridMapping, Mask, PreprocessError, prepare_input, segment_lungs};
use crate::render;
use crate::volume::Volume;
use crate::weights::ModelCard;

/// The stages of [`diagnose`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Lung segmentation.
    LungMask,
    /// Crop to the lungs, resample onto the model grid, HU window.
    Resample,
    /// Both branches of the network.
    Inference,
    /// The ensemble's attention over the lungs, and the lung region.
    Attention,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [
        Stage::LungMask,
        Stage::Resample,
        Stage::Inference,
        Stage::Attention,
    ];

    /// A short label for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Stage::LungMask => "lung mask",
            Stage::Resample => "crop and resample",
            Stage::Inference => "inference",
            Stage::Attention => "attention overlay",
        }
    }
}

/// Receives progress; the future it returns is awaited before the stage
/// starts, so a page can repaint in between.
pub trait ProgressSink {
    /// Stage `stage` is about to start.
    fn stage_started(&mut self, stage: Stage) -> impl Future<Output = ()>;
}

/// A sink that ignores progress (native callers without a display).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn stage_started(&mut self, _stage: Stage) -> impl Future<Output = ()> {
        std::future::ready(())
    }
}

/// How the network's output becomes a decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionConfig {
    /// The positive class is predicted when its ensemble probability reaches this (two classes).
    pub threshold: f32,
    /// Attention at or above this counts as high attention.
    pub high_attention: f32,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            high_attention: 0.5,
        }
    }
}

/// Why a volume could not be diagnosed.
#[derive(Debug, thiserror::Error)]
pub enum DiagnosisError {
    /// Preprocessing refused the volume.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The card and the model disagree with the pipeline.
    #[error("model card: {0}")]
    Card(String),
    /// The backend failed to compute or read a result.
    #[error("backend failed while reading {what}: {reason}")]
    Backend {
        /// Which output was being read.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
}

/// How far beyond the lung mask the attention overlay reaches by default, mm:
/// enough for consolidation against the pleura, short of the chest wall.
pub const LUNG_REGION_MARGIN_MM: f64 = 5.0;

/// Attention maps on the feature grid, in `[0, 1]`, for the ensemble and
/// each branch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BranchMaps {
    /// Mean of the two branches' normalised maps.
    pub ensemble: Vec<f32>,
    /// Branch U (uniform sampling).
    pub uniform: Vec<f32>,
    /// Branch B (size-balanced sampling).
    pub balanced: Vec<f32>,
}

/// Time spent in one stage.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: Stage,
    /// Wall-clock milliseconds.
    pub ms: f64,
}

/// The result of [`diagnose`]; [`Diagnosis::summary`] is its JSON-sized part.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// Everything but the volumes.
    pub summary: DiagnosisSummary,
    /// The lung mask on the volume's grid.
    pub lung_mask: Mask,
    /// The lung mask grown by [`LUNG_REGION_MARGIN_MM`]: where the overlay
    /// shows attention by default. Spread from a coarse feature grid, the
    /// map also covers the chest wall and the crop's edges, which a reader
    /// would take for a finding.
    pub lung_region: Mask,
}

impl Diagnosis {
    /// `map` (one of [`DiagnosisSummary::feature_attention`]'s) on the voxels
    /// of image `index` of `plane` through the CT, in
    /// [`render::Plane::image_size`] order, `value * 255` (see
    /// [`crate::preprocess::CropSampler::at`]); `None` when `index` is
    /// outside the CT. Only the plane shown is computed, never the whole
    /// volume of a map.
    pub fn attention_plane(
        &self,
        map: &[f32],
        plane: render::Plane,
        index: usize,
    ) -> Option<Vec<u8>> {
        let mapping = &self.summary.mapping;
        let sampler = mapping.sampler(self.summary.feature_grid);
        render::plane_values(mapping.volume_dims, plane, index, |voxel| {
            sampler.at(map, voxel)
        })
    }

    /// The voxel `[k, j, i]` where `map` (one of
    /// [`DiagnosisSummary::feature_attention`]'s) is strongest: the centre of
    /// its highest feature cell, among the cells whose centre lies in
    /// [`Diagnosis::lung_region`] unless `whole_map`. `None` when no cell's
    /// centre does, or `map` is not on the feature grid.
    pub fn attention_peak(&self, map: &[f32], whole_map: bool) -> Option<[usize; 3]> {
        let grid = self.summary.feature_grid;
        let [_, gh, gw] = grid;
        if map.len() != grid.iter().product::<usize>() {
            return None;
        }
        map.iter()
            .enumerate()
            .map(|(n, &value)| {
                let cell = [n / (gh * gw), n / gw % gh, n % gw];
                (value, self.summary.mapping.cell_voxel(grid, cell))
            })
            .filter(|&(_, [k, j, i])| whole_map || self.lung_region.get(k, j, i))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, voxel)| voxel)
    }

    /// `map` (as for [`Diagnosis::attention_plane`]) at every voxel of the
    /// CT, for writing it out as a volume.
    pub fn attention_volume(&self, map: &[f32]) -> Vec<u8> {
        self.summary
            .mapping
            .map_to_volume(map, self.summary.feature_grid)
    }

    /// Axial slice `k` of `volume` (the CT this diagnosis is of) in the lung
    /// window, with the ensemble attention inside [`Diagnosis::lung_region`]
    /// and the lung outline: the overlay of the page's report and of
    /// `dsan predict`'s mosaic. `None` when `k` is outside the volume.
    pub fn axial_overlay(&self, volume: &Volume, k: usize) -> Option<Vec<u8>> {
        let [_, rows, columns] = volume.dims();
        let mut rgba = render::axial_rgba(volume, k, render::Window::LUNG)?;
        let slice = k * rows * columns..(k + 1) * rows * columns;
        let outline =
            render::mask_outline(self.lung_mask.data().get(slice.clone())?, rows, columns);
        let ensemble = &self.summary.feature_attention.ensemble;
        let attention = render::masked(
            &self.attention_plane(ensemble, render::Plane::Axial, k)?,
            self.lung_region.data().get(slice)?,
        );
        render::blend_attention(
            &mut rgba,
            &attention,
            render::OverlayStyle::default(),
            Some(&outline),
        );
        Some(rgba)
    }
}

/// The figures of a [`Diagnosis`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiagnosisSummary {
    /// Class names by output index (from the model card).
    pub classes: Vec<String>,
    /// Ensemble probabilities by class.
    pub probabilities: Vec<f32>,
    /// Branch U's probabilities.
    pub uniform_probabilities: Vec<f32>,
    /// Branch B's probabilities.
    pub balanced_probabilities: Vec<f32>,
    /// Index of the positive class (COVID-19), if the card names one.
    pub positive_class: Option<usize>,
    /// Ensemble probability of the positive class, if there is one.
    pub positive_probability: Option<f32>,
    /// Predicted class index.
    pub predicted: usize,
    /// Predicted class name.
    pub predicted_class: String,
    /// The decision rule's settings.
    pub decision: DecisionConfig,
    /// Lung volume, mL.
    pub lung_volume_ml: f64,
    /// Number of lung components (2 for separate lungs).
    pub lung_components: usize,
    /// Share of the lung volume where the ensemble attention is high.
    pub high_attention_fraction: f64,
    /// Where the model grid lies in the volume.
    pub mapping: GridMapping,
    /// Feature grid `[d, h, w]` of `feature_attention`.
    pub feature_grid: [usize; 3],
    /// Attention of the predicted class on the feature grid, in `[0, 1]`.
    pub feature_attention: BranchMaps,
    /// Time per stage.
    pub timings: Vec<StageTiming>,
}

impl DiagnosisSummary {
    /// Whether the attention maps fit a CT of `dims`: the mapping is of such
    /// a CT, its crop box lies inside it, and every map holds one value per
    /// cell of a non-empty feature grid. A summary that travelled between
    /// threads is checked so before its maps are read.
    pub fn maps_fit(&self, dims: [usize; 3]) -> bool {
        let mapping = &self.mapping;
        let cells: usize = self.feature_grid.iter().product();
        let maps = &self.feature_attention;
        mapping.volume_dims == dims
            && (0..3)
                .all(|a| mapping.crop.lo[a] <= mapping.crop.hi[a] && mapping.crop.hi[a] < dims[a])
            && cells > 0
            && [&maps.ensemble, &maps.uniform, &maps.balanced]
                .iter()
                .all(|m| m.len() == cells)
    }
}

/// The index of the COVID-19 class in `classes`: the name containing "covid"
/// (any case), else index 1 of a two-class model.
pub fn positive_class(classes: &[String]) -> Option<usize> {
    classes
        .iter()
        .position(|c| c.to_ascii_lowercase().contains("covid"))
        .or((classes.len() == 2).then_some(1))
}

/// Runs the whole pipeline on `volume` with `model` as `card` describes it,
/// both branches in turn on `device`.
pub async fn diagnose<B: Backend>(
    volume: &Volume,
    model: &Dsan<B>,
    card: &ModelCard,
    decision: &DecisionConfig,
    device: &B::Device,
    progress: &mut impl ProgressSink,
) -> Result<Diagnosis, DiagnosisError> {
    let mut inference = BothBranches { model, device };
    diagnose_with(volume, card, decision, &mut inference, progress).await
}

/// Runs the whole pipeline on `volume` as `card` describes it, the network's
/// branches run by `inference`.
pub async fn diagnose_with(
    volume: &Volume,
    card: &ModelCard,
    decision: &DecisionConfig,
    inference: &mut impl Inference,
    progress: &mut impl ProgressSink,
) -> Result<Diagnosis, DiagnosisError> {
    if card.classes.len() != card.architecture.num_classes {
        return Err(DiagnosisError::Card(format!(
            "{} class names for {} outputs",
            card.classes.len(),
            card.architecture.num_classes
        )));
    }
    let mut timings = Vec::with_capacity(Stage::ALL.len());
    let mut clock = Clock::start(Stage::LungMask, progress).await;
    let lungs = segment_lungs(volume, &card.preprocessing.lung_mask)?;
    clock = clock.next(Stage::Resample, progress, &mut timings).await;
    let input = prepare_input(volume, &lungs, &card.preprocessing, card.architecture.input)?;
    clock = clock.next(Stage::Inference, progress, &mut timings).await;
    let [uniform, balanced] = inference.infer(&input.values, input.mapping.grid).await?;
    let classes = card.classes.len();
    if !(uniform.fits(classes) && balanced.fits(classes) && uniform.grid == balanced.grid) {
        return Err(DiagnosisError::Backend {
            what: "the branches' outputs",
            reason: format!("they do not fit the card's {classes} classes"),
        });
    }
    clock = clock.next(Stage::Attention, progress, &mut timings).await;

    let positive = positive_class(&card.classes);
    let probabilities: Vec<f32> = uniform
        .probabilities
        .iter()
        .zip(&balanced.probabilities)
        .map(|(u, b)| (u + b) / 2.0)
        .collect();
    let predicted = match positive {
        Some(p) if classes == 2 => {
            if probabilities[p] >= decision.threshold {
                p
            } else {
                1 - p
            }
        }
        _ => argmax(&probabilities),
    };
    let grid = uniform.grid;
    let cells = grid.iter().product::<usize>();
    let pick = |maps: &[f32]| maps[predicted * cells..(predicted + 1) * cells].to_vec();
    let uniform_map = pick(&uniform.maps);
    let balanced_map = pick(&balanced.maps);
    let ensemble: Vec<f32> = uniform_map
        .iter()
        .zip(&balanced_map)
        .map(|(u, b)| (u + b) / 2.0)
        .collect();
    let high = (decision.high_attention.clamp(0.0, 1.0) * 255.0).round() as u8;
    let lung_voxels = lungs.mask.count();
    let sampler = input.mapping.sampler(grid);
    let [slices, rows, columns] = volume.dims();
    let lung = lungs.mask.data();
    let mut high_voxels = 0usize;
    for k in 0..slices {
        for j in 0..rows {
            let row = (k * rows + j) * columns;
            high_voxels += (0..columns)
                .filter(|&i| lung[row + i] != 0 && sampler.at(&ensemble, [k, j, i]) >= high)
                .count();
        }
    }
    let lung_region = lungs.grown(LUNG_REGION_MARGIN_MM);
    clock.finish(&mut timings);
    let summary = DiagnosisSummary {
        classes: card.classes.clone(),
        positive_class: positive,
        positive_probability: positive.map(|p| probabilities[p]),
        predicted,
        predicted_class: card.classes[predicted].clone(),
        probabilities,
        uniform_probabilities: uniform.probabilities,
        balanced_probabilities: balanced.probabilities,
        decision: decision.clone(),
        lung_volume_ml: lungs.volume_ml,
        lung_components: lungs.components,
        high_attention_fraction: high_voxels as f64 / lung_voxels.max(1) as f64,
        mapping: input.mapping,
        feature_grid: grid,
        feature_attention: BranchMaps {
            ensemble,
            uniform: uniform_map,
            balanced: balanced_map,
        },
        timings,
    };
    Ok(Diagnosis {
        summary,
        lung_mask: lungs.mask,
        lung_region,
    })
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// Times the current stage and announces the next.
struct Clock {
    stage: Stage,
    started: Instant,
}

impl Clock {
    async fn start(stage: Stage, progress: &mut impl ProgressSink) -> Self {
        progress.stage_started(stage).await;
        Self {
            stage,
            started: Instant::now(),
        }
    }

    async fn next(
        self,
        stage: Stage,
        progress: &mut impl ProgressSink,
        timings: &mut Vec<StageTiming>,
    ) -> Self {
        self.finish(timings);
        Self::start(stage, progress).await
    }

    fn finish(self, timings: &mut Vec<StageTiming>) {
        timings.push(StageTiming {
            stage: self.stage,
            ms: self.started.elapsed().as_secs_f64() * 1000.0,
        });
    }
}
