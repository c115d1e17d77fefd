//! The model card: the JSON document that travels with a weights file and
//! says what the model is, how to feed it, how it was trained and measured,
//! and which exact weights file belongs to it.

use serde::{Deserialize, Serialize};

use crate::model::DsanConfig;
use crate::preprocess::LungMaskConfig;

/// Card format this build reads and writes.
pub const CARD_FORMAT_VERSION: u32 = 1;

/// The largest model card read, bytes (a card is a few kilobytes of JSON).
pub const MAX_CARD_BYTES: u64 = 1 << 20;

/// Weights encoding this build reads and writes.
pub const WEIGHTS_FORMAT: &str = "burn-0.21-named-mpk-f16";

/// Name of the index in `model-weights/` that names the page's default model.
pub const MODEL_INDEX_FILE: &str = "models.json";

/// `model-weights/models.json`: which card (a file beside it) the page loads
/// as its default model; `null` when none ships.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelIndex {
    /// File name of the default model's card.
    pub default: Option<String>,
}

/// A model card (see `model-weights/README.md` for the field reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Version of this card format ([`CARD_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Short model name, shown in the page.
    pub name: String,
    /// Model version, shown in the page.
    pub version: String,
    /// Network architecture; rebuilt exactly at load time.
    pub architecture: DsanConfig,
    /// How a CT volume is turned into the network input.
    pub preprocessing: Preprocessing,
    /// Class names by output index (CAP = 0, COVID-19 = 1 for the paper's task).
    pub classes: Vec<String>,
    /// The weights file and its fingerprints.
    pub weights: WeightsFile,
    /// What the model was trained on.
    pub training_data: TrainingData,
    /// Measured performance, each with how it was measured.
    pub metrics: Vec<Metric>,
    /// What the model is for.
    pub intended_use: String,
    /// What it must not be used for and known weaknesses.
    pub limitations: String,
}

/// Preprocessing parameters (the model grid itself is `architecture.input`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// HU window `[low, high]` mapped linearly to `[0, 1]` (clamped outside).
    pub hu_window: [f32; 2],
    /// Margin around the lung bounding box, in millimetres.
    pub lung_crop_margin_mm: f32,
    /// Whether voxels outside the lung mask are set to the window's low end.
    pub mask_outside_lungs: bool,
    /// The lung segmentation's constants (the defaults when a card omits them).
    #[serde(default)]
    pub lung_mask: LungMaskConfig,
}

impl Default for Preprocessing {
    /// The project's specification: window [-1200, 600] HU, 10 mm margin, no
    /// masking, the default lung segmentation.
    fn default() -> Self {
        Self {
            hu_window: [-1200.0, 600.0],
            lung_crop_margin_mm: 10.0,
            mask_outside_lungs: false,
            lung_mask: LungMaskConfig::default(),
        }
    }
}

/// The weights file a card belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsFile {
    /// File name, relative to the card.
    pub file: String,
    /// Encoding ([`WEIGHTS_FORMAT`]).
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Number of trainable parameters of both branches.
    pub parameter_count: u64,
    /// SHA-256 of the tensor layout (every tensor's path and shape), which ties
    /// the weights to `architecture`.
    pub layout_sha256: String,
}

/// Summary of the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// Free-text description (source, selection, licence).
    pub description: String,
    /// True when the cases are synthetic phantoms, not patients.
    pub synthetic: bool,
    /// Number of training cases per class name.
    pub cases_per_class: Vec<(String, u64)>,
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name, e.g. "AUC (ensemble)".
    pub name: String,
    /// Value (mean over folds where `sd` is given).
    pub value: f64,
    /// Standard deviation over folds, if measured that way.
    pub sd: Option<f64>,
    /// 95 % bootstrap interval `[low, high]`, if measured that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    /// How and on what it was measured.
    pub measured_on: String,
}
