//! The model self-check shared by the page, the forward benchmark and the
//! cross-backend parity test: a randomly initialised model made reproducible by
//! a seed, run on the synthetic input, with its outputs read back.
//!
//! The weights are always drawn on the CPU backend and moved to the target
//! backend through the half-precision weights format, so every backend (and
//! every platform) runs bit-identical weights.

use std::sync::Mutex;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

use crate::CpuBackend;
use crate::model::{Dsan, DsanConfig, read_floats, synthetic_input};
use crate::weights::{
    CARD_FORMAT_VERSION, ModelCard, Preprocessing, TrainingData, WeightsError, decode_weights,
    encode_weights,
};

/// Burn's CPU backend seeds one process-wide generator: hold this while seeding
/// and drawing, so concurrent callers cannot interleave their draws.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

/// A self-check that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Moving the seeded weights to the backend failed.
    #[error("seeded weights: {0}")]
    Weights(#[from] WeightsError),
    /// The backend failed while computing or reading a result.
    #[error("backend failed while reading {what}: {reason}")]
    Backend {
        /// Which output was being read.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
}

/// The outputs of one forward pass of the synthetic input, read back to the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForwardSummary {
    /// Softmax of branch U.
    pub uniform: Vec<f32>,
    /// Softmax of branch B.
    pub balanced: Vec<f32>,
    /// Ensemble probabilities.
    pub ensemble: Vec<f32>,
    /// Mean attention of the predicted class on the feature grid (row-major).
    pub attention: Vec<f32>,
    /// The feature grid `[d, h, w]` of `attention`.
    pub attention_grid: [usize; 3],
}

/// Reads every parameter once, so lazily initialised ones draw their values now.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        param.val();
    }
}

/// A model on the CPU backend with f32 weights drawn from `seed`.
///
/// Deterministic as long as nothing else in the process draws from the CPU
/// backend's generator while it runs (this crate never does: loading weights
/// does not initialise parameters).
pub fn seeded_cpu_model(config: &DsanConfig, seed: u64) -> Dsan<CpuBackend> {
    let cpu = Default::default();
    let _guard = SEEDED_INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    CpuBackend::seed(&cpu, seed);
    let model = config.init::<CpuBackend>(&cpu);
    model.visit(&mut Materialize);
    model
}

/// [`seeded_cpu_model`] moved onto `device` through the half-precision
/// weights format (so its weights are f16-representable on every backend).
pub fn seeded_model<B: Backend>(
    config: &DsanConfig,
    seed: u64,
    device: &B::Device,
) -> Result<Dsan<B>, WeightsError> {
    let (entry, bytes) = encode_weights(seeded_cpu_model(config, seed), "seeded")?;
    decode_weights(config, &entry, &bytes, device)
}

/// A model card and weights file for [`seeded_cpu_model`]: an untrained
/// model, labelled as such, that the pipeline can run until trained weights
/// are available (the classes are the paper's: CAP = 0, COVID-19 = 1).
pub fn seeded_card(config: &DsanConfig, seed: u64) -> Result<(ModelCard, Vec<u8>), WeightsError> {
    let file = format!("untrained-seed-{seed}.mpk");
    let (weights, bytes) = encode_weights(seeded_cpu_model(config, seed), &file)?;
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: format!("untrained DSAN (random weights, seed {seed})"),
        version: "0.0.0".into(),
        architecture: config.clone(),
        preprocessing: Preprocessing::default(),
        classes: vec!["CAP".into(), "COVID-19".into()],
        weights,
        training_data: TrainingData {
            description: "none: randomly initialised weights".into(),
            synthetic: true,
            cases_per_class: Vec::new(),
        },
        metrics: Vec::new(),
        intended_use: "testing the software only".into(),
        limitations: "untrained: its probabilities mean nothing".into(),
    };
    Ok((card, bytes))
}

/// Runs `model` on [`synthetic_input`] and reads the outputs back without
/// blocking (WebGPU reads must be awaited).
pub async fn forward_summary<B: Backend>(
    model: &Dsan<B>,
    config: &DsanConfig,
    device: &B::Device,
) -> Result<ForwardSummary, ProbeError> {
    let output = model.forward(synthetic_input::<B>(config.input, device));
    let [_, d, h, w] = output.attention.dims();
    Ok(ForwardSummary {
        uniform: read(output.uniform_probabilities, "branch U probabilities").await?,
        balanced: read(output.balanced_probabilities, "branch B probabilities").await?,
        ensemble: read(output.probabilities, "ensemble probabilities").await?,
        attention: read(output.attention, "attention").await?,
        attention_grid: [d, h, w],
    })
}

async fn read<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
    what: &'static str,
) -> Result<Vec<f32>, ProbeError> {
    read_floats(tensor)
        .await
        .map_err(|reason| ProbeError::Backend { what, reason })
}
