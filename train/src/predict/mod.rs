//! `dsan predict`: the page's diagnosis, natively: a CT (DICOM files,
//! folders, .zip or NIfTI) through the library's pipeline, printed as JSON,
//! with the attention and the lung mask as NIfTI and a PNG mosaic on request.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Backend as BurnBackend;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::model::Dsan;
use dsan_ct::pipeline::{DecisionConfig, Diagnosis, NoProgress, diagnose};
use dsan_ct::probe::seeded_card;
use dsan_ct::volume::Volume;
use dsan_ct::weights::{ModelCard, load_model_files, load_weights};

pub(crate) mod outputs;

use crate::commands::Preset;
use crate::compute::{Backend, OnBackend};
use crate::data::files::{Readers, read_volume};
use crate::data::slice_images::SliceImages;
use outputs::{write_mosaic, write_nifti};

/// What to diagnose and how.
pub struct PredictArgs {
    /// Files or folders.
    pub paths: Vec<PathBuf>,
    /// Model card; without it, the seeded untrained model.
    pub weights: Option<PathBuf>,
    /// Preset of the untrained model.
    pub preset: Preset,
    /// Seed of the untrained model.
    pub seed: u64,
    /// Which series (index in the list `dsan inspect` prints); the default otherwise.
    pub series: Option<usize>,
    /// Folder for the NIfTI maps, the mosaic and the JSON.
    pub out: Option<PathBuf>,
    /// Compute backend.
    pub backend: Backend,
    /// How slice images map to HU and geometry.
    pub images: SliceImages,
}

fn load_model<B: BurnBackend>(
    args: &PredictArgs,
    device: &B::Device,
) -> anyhow::Result<(ModelCard, Dsan<B>)> {
    match &args.weights {
        Some(card) => Ok(load_model_files::<B>(card, device)?),
        None => {
            let (card, bytes) = seeded_card(&args.preset.config(), args.seed)?;
            let model = load_weights::<B>(&card, &bytes, device)?;
            Ok((card, model))
        }
    }
}

/// Runs the pipeline and prints `{input, model, diagnosis}` as JSON.
pub fn predict(args: &PredictArgs) -> anyhow::Result<()> {
    args.backend.execute(args)
}

impl OnBackend for &PredictArgs {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        predict_on::<B::InnerBackend>(self, &device)
    }
}

fn predict_on<B: BurnBackend>(args: &PredictArgs, device: &B::Device) -> anyhow::Result<()> {
    let input = read_volume(&args.paths, args.series, Readers::AllCores, &args.images)?;
    let (card, model) = load_model::<B>(args, device)?;
    let diagnosis = pollster::block_on(diagnose(
        &input.volume,
        &model,
        &card,
        &DecisionConfig::default(),
        device,
        &mut NoProgress,
    ))
    .with_context(|| format!("diagnosing {}", input.source))?;
    let report = serde_json::json!({
        "input": {
            "source": input.source,
            "dims": input.volume.dims(),
            "spacing_mm": input.volume.spacing(),
            "warnings": input.warnings,
            "skipped": input.skipped,
        },
        "model": {
            "name": card.name,
            "version": card.version,
            "weights_sha256": card.weights.sha256,
            "synthetic_training_data": card.training_data.synthetic,
        },
        "diagnosis": diagnosis.summary,
    });
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.out {
        write_outputs(out, &input.volume, &diagnosis, &json)?;
    }
    println!("{json}");
    Ok(())
}

fn write_outputs(
    out: &Path,
    volume: &Volume,
    diagnosis: &Diagnosis,
    json: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let path = |name: &str| out.join(name);
    std::fs::write(path("diagnosis.json"), json)?;
    write_nifti(
        &path("attention.nii.gz"),
        volume,
        &diagnosis.attention_volume(&diagnosis.summary.feature_attention.ensemble),
    )?;
    write_nifti(
        &path("attention-uniform.nii.gz"),
        volume,
        &diagnosis.attention_volume(&diagnosis.summary.feature_attention.uniform),
    )?;
    write_nifti(
        &path("attention-balanced.nii.gz"),
        volume,
        &diagnosis.attention_volume(&diagnosis.summary.feature_attention.balanced),
    )?;
    write_nifti(
        &path("lung-mask.nii.gz"),
        volume,
        diagnosis.lung_mask.data(),
    )?;
    write_mosaic(&path("mosaic.png"), volume, diagnosis)?;
    Ok(())
}
