//! `dsan export`: a run's best model as the weights and model card the page loads.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use dsan_ct::CpuBackend;
use dsan_ct::model::Dsan;
use dsan_ct::weights::{
    CARD_FORMAT_VERSION, MODEL_INDEX_FILE, Metric, ModelCard, ModelIndex, TrainingData,
    encode_weights, save_model_files,
};

use crate::data::sampler::SizeBand;
use crate::evaluation::evaluate::{Evaluation, ModelMetrics};
use crate::evaluation::report::model_rows;
use crate::training::command::DataSummary;
use crate::training::config::TrainConfig;

/// What `dsan export` writes and records.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportOptions {
    /// Run folder of `dsan train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder, e.g. model-weights/.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name shown in the page.
    #[arg(long)]
    pub name: String,
    /// Model version.
    #[arg(long, default_value = "1.0.0")]
    pub version: String,
    /// The training data are synthetic phantoms (said in the card and the page).
    #[arg(long)]
    pub synthetic: bool,
    /// metrics.json files of `dsan eval` on held-out sets to record in the card.
    #[arg(long)]
    pub metrics: Vec<PathBuf>,
    /// metrics.json of `dsan eval` for the same training without the
    /// attention loss (lambda = 0), recorded as the ablation.
    #[arg(long)]
    pub ablation: Option<PathBuf>,
    /// A sentence added to the card's limitations (e.g. what the model gave
    /// on real scans).
    #[arg(long)]
    pub note: Option<String>,
    /// Also name the card in <out>/models.json, so that the page (with
    /// --out model-weights) loads it as its default model.
    #[arg(long)]
    pub default: bool,
}

/// `dsan export`: the best model of a run as a half-precision weights file and
/// a model card (architecture, preprocessing, classes, data summary, the run's
/// validation metrics, those of `dsan eval` outputs with their 95 % intervals
/// and the ablation's, SHA-256); with `default`, the card is also named in
/// `out/models.json` (the page's default).
pub fn export_command(options: &ExportOptions) -> anyhow::Result<()> {
    let ExportOptions {
        run,
        out,
        name,
        version,
        synthetic,
        ..
    } = options;
    let synthetic = *synthetic;
    let read = |file: &str| -> anyhow::Result<Vec<u8>> {
        let path = run.join(file);
        std::fs::read(&path).with_context(|| path.display().to_string())
    };
    let config: TrainConfig = serde_json::from_slice(&read("config.json")?)?;
    let data: DataSummary = serde_json::from_slice(&read("data.json")?)?;
    let device = Default::default();
    let model: Dsan<CpuBackend> = burn::module::Module::load_file(
        config.model.init::<CpuBackend>(&device),
        run.join("best"),
        &NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
        &device,
    )
    .context("loading the run's best model")?;
    let file = format!("{}.mpk", slug(name, version));
    let (weights, bytes) = encode_weights(model, &file)?;
    let mut metrics = Vec::new();
    if let Some(validation) = &data.validation {
        let on = format!(
            "validation split of the training data ({} cases, split by patient), threshold 0.5",
            data.val_cases.len()
        );
        push_metrics(&mut metrics, &validation.overall, &on);
    }
    for path in &options.metrics {
        let (evaluation, on) = read_evaluation(path)?;
        push_evaluation(&mut metrics, &evaluation, &on);
    }
    if let Some(path) = &options.ablation {
        let (evaluation, on) = read_evaluation(path)?;
        let on =
            format!("ablation, the same training without the attention loss (lambda = 0): {on}");
        push_evaluation(&mut metrics, &evaluation, &on);
    }
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.clone(),
        version: version.clone(),
        architecture: config.model.clone(),
        preprocessing: config.preprocessing.clone(),
        classes: config.classes.clone(),
        weights,
        training_data: TrainingData {
            description: format!(
                "{} training cases from {} ({}); trained by dsan with dual sampling, lambda = {}, seed {}",
                data.train_cases.len(),
                data.data,
                if synthetic {
                    "synthetic chest-CT phantoms from `dsan phantoms`, not patients"
                } else {
                    "site data"
                },
                config.attention_lambda,
                config.seed
            ),
            synthetic,
            cases_per_class: data.cases_per_class.clone(),
        },
        metrics,
        intended_use:
            "Research and demonstration of privacy-first CT analysis; not a medical device.".into(),
        limitations: [
            if synthetic {
                "Trained on synthetic phantoms only: its outputs say nothing about real patients."
            } else {
                "Validated only on the data named here."
            },
            options.note.as_deref().unwrap_or_default(),
            "Not a medical device.",
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" "),
    };
    let card_file = format!("{}.json", slug(name, version));
    let path = save_model_files(out, &card_file, &card, &bytes)?;
    if options.default {
        let index = out.join(MODEL_INDEX_FILE);
        let json = serde_json::to_string_pretty(&ModelIndex {
            default: Some(card_file),
        })?;
        std::fs::write(&index, json + "\n").with_context(|| index.display().to_string())?;
    }
    println!("{}", path.display());
    Ok(())
}

/// A `dsan eval` metrics.json: its evaluation, and what it was measured on.
fn read_evaluation(path: &Path) -> anyhow::Result<(Evaluation, String)> {
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).with_context(|| path.display().to_string())?)?;
    let evaluation: Evaluation = serde_json::from_value(value["evaluation"].clone())
        .with_context(|| format!("{}: not a dsan eval metrics.json", path.display()))?;
    let on = format!(
        "held-out set {} ({} cases), threshold 0.5",
        value["data"].as_str().unwrap_or("?"),
        value["cases"]
    );
    Ok((evaluation, on))
}

/// The overall metrics of `evaluation`, and each model's sensitivity on the
/// positive class's small infections (the group dual sampling is for).
fn push_evaluation(metrics: &mut Vec<Metric>, evaluation: &Evaluation, on: &str) {
    push_metrics(metrics, &evaluation.overall, on);
    let small = evaluation
        .by_size
        .iter()
        .find(|(band, _)| *band == SizeBand::Small);
    if let Some((_, m)) = small {
        for row in model_rows(m)
            .into_iter()
            .filter(|r| r.metric == "sensitivity")
        {
            if let Some(value) = row.value {
                metrics.push(Metric {
                    name: format!("sensitivity on small infections ({})", row.model),
                    value,
                    sd: None,
                    ci95: row.ci95,
                    measured_on: on.to_owned(),
                });
            }
        }
    }
}

fn push_metrics(metrics: &mut Vec<Metric>, m: &ModelMetrics, on: &str) {
    for row in model_rows(m) {
        if let Some(value) = row.value {
            metrics.push(Metric {
                name: format!("{} ({})", row.metric, row.model),
                value,
                sd: None,
                ci95: row.ci95,
                measured_on: on.to_owned(),
            });
        }
    }
}

fn slug(name: &str, version: &str) -> String {
    format!("{name}-{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
