//! `dsan train`, `dsan cv`, `dsan eval` and `dsan export`: the command-line
//! side of training, cross-validation, evaluation and export, on the backend
//! the user picks.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use burn::backend::{Autodiff, NdArray};
use burn::prelude::{Backend as BurnBackend, DeviceOps};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::{AutodiffBackend, DeviceId};
use dsan_ct::model::Dsan;
use dsan_ct::pipeline::positive_class;
use dsan_ct::weights::{
    CARD_FORMAT_VERSION, MODEL_INDEX_FILE, Metric, ModelCard, ModelIndex, Preprocessing,
    TrainingData, encode_weights, load_model_files, save_model_files,
};
use serde::{Deserialize, Serialize};

use crate::augment::Augmentation;
use crate::commands::Preset;
use crate::dataset::{Dataset, PreparedCase, Reading, load_dataset};
use crate::evaluate::{CasePrediction, Evaluation, ModelMetrics, evaluate, predict_cases};
use crate::folds::patient_folds;
use crate::layouts::{Layout, case_records};
use crate::metrics::{BinaryMetrics, mean_sd};
use crate::plots::{write_reliability, write_roc};
use crate::predict::Backend;
use crate::sampler::SizeBands;
use crate::slice_images::SliceImages;
use crate::trainer::{TrainConfig, train};

/// Options shared by `dsan train` and `dsan cv`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainOptions {
    #[command(flatten)]
    pub source: DataSource,
    /// Network preset.
    #[arg(long, value_enum, default_value_t = Preset::WebDefault)]
    pub preset: Preset,
    /// Class names by output index; labels.csv uses these names.
    #[arg(long, value_delimiter = ',', default_value = "CAP,COVID-19")]
    pub classes: Vec<String>,
    /// Most epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Cases per step and branch.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub learning_rate: f64,
    /// Weight of the attention loss (0 = off, the ablation).
    #[arg(long, default_value_t = 1.0)]
    pub attention_lambda: f64,
    /// Epochs without a better validation AUC before stopping.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Seed of weights, splits, draws and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train without augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Share of patients held out for validation (early stopping).
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Devices each batch is split over (data parallel): the backend's
    /// devices 0..N, e.g. CUDA GPUs.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
}

/// A labelled data folder and how to read it.
#[derive(Debug, Clone, clap::Args)]
pub struct DataSource {
    /// Data folder: cases and labels.csv (`case_id,patient_id,label[,infection_mask]`),
    /// or cases in another --layout.
    #[arg(long = "data")]
    pub dir: PathBuf,
    /// How the data folder names its cases and labels.
    #[arg(long, value_enum, default_value_t = Layout::LabelsCsv)]
    pub layout: Layout,
    /// Cache of prepared cases (default: <data>/.dsan-cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub images: SliceImages,
}

impl TrainOptions {
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let model = self.preset.config().with_num_classes(self.classes.len());
        model.validate()?;
        let positive = positive_class(&self.classes).unwrap_or(self.classes.len() - 1);
        Ok(TrainConfig {
            model,
            preprocessing: Preprocessing::default(),
            classes: self.classes.clone(),
            positive,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            attention_lambda: self.attention_lambda,
            patience: self.patience,
            seed: self.seed,
            augmentation: if self.no_augment {
                Augmentation::NONE
            } else {
                Augmentation::default()
            },
        })
    }

    fn dataset(&self, config: &TrainConfig) -> anyhow::Result<Dataset> {
        read_dataset(
            &self.source,
            &config.classes,
            &config.preprocessing,
            config.model.input,
        )
    }
}

/// The cases of `source`, prepared for the grid, through its cache (default
/// `<data>/.dsan-cache`); cases of other classes are counted on stderr.
fn read_dataset(
    source: &DataSource,
    classes: &[String],
    preprocessing: &Preprocessing,
    grid: [usize; 3],
) -> anyhow::Result<Dataset> {
    let data = source.dir.as_path();
    let (records, left_out) = case_records(data, source.layout, classes)?;
    for (label, n) in left_out {
        eprintln!("left out {n} case(s) labelled {label:?}: not one of the classes {classes:?}");
    }
    let cache = source
        .cache
        .clone()
        .unwrap_or_else(|| data.join(".dsan-cache"));
    let reading = Reading {
        preprocessing,
        grid,
        images: &source.images,
    };
    load_dataset(data, &records, classes, &reading, Some(&cache))
}

/// What a run folder says about its data (written by `dsan train`, read by `dsan export`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DataSummary {
    data: String,
    train_cases: Vec<String>,
    val_cases: Vec<String>,
    cases_per_class: Vec<(String, u64)>,
    validation: Option<Evaluation>,
}

/// Splits `cases` by patient: every `k`-th patient group (fold 0 of `k`) is held out.
fn split_by_patient<'a>(
    cases: &[&'a PreparedCase],
    k: usize,
    seed: u64,
) -> (Vec<&'a PreparedCase>, Vec<&'a PreparedCase>) {
    let patients: Vec<String> = cases.iter().map(|c| c.patient_id.clone()).collect();
    let labels: Vec<usize> = cases.iter().map(|c| c.label).collect();
    let folds = patient_folds(&patients, &labels, k, seed);
    let (held, kept): (Vec<_>, Vec<_>) = cases.iter().zip(&folds).partition(|(_, f)| **f == 0);
    (
        kept.into_iter().map(|(c, _)| *c).collect(),
        held.into_iter().map(|(c, _)| *c).collect(),
    )
}

fn folds_for(val_fraction: f64) -> anyhow::Result<usize> {
    ensure!(
        val_fraction > 0.0 && val_fraction < 1.0,
        "--val-fraction must be between 0 and 1"
    );
    Ok(((1.0 / val_fraction).round() as usize).max(2))
}

/// `dsan train`: trains on the data folder and writes the run into `out`.
pub fn train_command(options: &TrainOptions, out: &Path, resume: bool) -> anyhow::Result<()> {
    options.backend.run(|| match options.backend {
        Backend::Cpu => train_on::<Autodiff<NdArray<f32>>>(options, out, resume),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => train_on::<Autodiff<burn::backend::Wgpu>>(options, out, resume),
        #[cfg(feature = "cuda")]
        Backend::Cuda => train_on::<Autodiff<burn::backend::Cuda>>(options, out, resume),
    })
}

fn train_on<B: AutodiffBackend>(
    options: &TrainOptions,
    out: &Path,
    resume: bool,
) -> anyhow::Result<()> {
    let config = options.config()?;
    let devices = numbered_devices::<B>(options.devices)?;
    let dataset = options.dataset(&config)?;
    let all: Vec<&PreparedCase> = dataset.iter().collect();
    let (train_cases, val_cases) =
        split_by_patient(&all, folds_for(options.val_fraction)?, options.seed);
    eprintln!(
        "{} cases: {} for training, {} for validation (split by patient)",
        all.len(),
        train_cases.len(),
        val_cases.len()
    );
    let outcome = train::<B>(&config, &train_cases, &val_cases, out, resume, &devices)?;
    let tertiles = outcome.tertiles;
    let validation = (!outcome.validation.is_empty())
        .then(|| evaluate(&outcome.validation, config.positive, 0.5, tertiles));
    let summary = DataSummary {
        data: options.source.dir.display().to_string(),
        train_cases: train_cases.iter().map(|c| c.case_id.clone()).collect(),
        val_cases: val_cases.iter().map(|c| c.case_id.clone()).collect(),
        cases_per_class: count_per_class(&config.classes, &train_cases),
        validation,
    };
    std::fs::write(out.join("data.json"), serde_json::to_vec_pretty(&summary)?)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "run": out.display().to_string(),
            "best_epoch": outcome.best_epoch,
            "best_val_auc": outcome.best_val_auc,
            "epochs": outcome.log.len(),
            "validation": summary.validation,
        }))?
    );
    Ok(())
}

/// The backend's devices `0..n`; refused when it has fewer numbered devices
/// (the CPU backend is one device on every core, wgpu's default adapter one).
fn numbered_devices<B: BurnBackend>(n: usize) -> anyhow::Result<Vec<B::Device>> {
    ensure!(n >= 1, "--devices must be at least 1");
    let first = B::Device::default();
    if n == 1 {
        return Ok(vec![first]);
    }
    let kind = first.to_id().type_id;
    let devices = (0..n)
        .map(|i| {
            u16::try_from(i).map(|index_id| {
                B::Device::from_id(DeviceId {
                    type_id: kind,
                    index_id,
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let distinct: BTreeSet<DeviceId> = devices.iter().map(DeviceOps::to_id).collect();
    ensure!(
        distinct.len() == n,
        "--devices {n}: the {} backend has no devices numbered 0 to {}; \
         data-parallel training needs several GPUs (CUDA)",
        B::name(&first),
        n - 1
    );
    Ok(devices)
}

fn count_per_class(classes: &[String], cases: &[&PreparedCase]) -> Vec<(String, u64)> {
    classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let n = cases.iter().filter(|c| c.label == i).count();
            (name.clone(), n as u64)
        })
        .collect()
}

/// `dsan cv`: k-fold cross-validation split by patient; each fold trains on
/// the others (with a patient-split validation part for early stopping) and
/// is scored on its held-out cases.
pub fn cv_command(options: &TrainOptions, out: &Path, folds: usize) -> anyhow::Result<()> {
    options.backend.run(|| match options.backend {
        Backend::Cpu => cv_on::<Autodiff<NdArray<f32>>>(options, out, folds),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => cv_on::<Autodiff<burn::backend::Wgpu>>(options, out, folds),
        #[cfg(feature = "cuda")]
        Backend::Cuda => cv_on::<Autodiff<burn::backend::Cuda>>(options, out, folds),
    })
}

/// Cross-validation results (cv.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CrossValidation {
    folds: usize,
    per_fold: Vec<Evaluation>,
    summary: Vec<SummaryRow>,
    predictions: Vec<(usize, CasePrediction)>,
}

/// One metric as mean and sd over folds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SummaryRow {
    group: String,
    model: String,
    metric: String,
    mean: f64,
    sd: f64,
    folds: usize,
}

fn cv_on<B: AutodiffBackend>(options: &TrainOptions, out: &Path, k: usize) -> anyhow::Result<()> {
    ensure!(k >= 2, "cross-validation needs at least 2 folds");
    let config = options.config()?;
    let devices = numbered_devices::<B>(options.devices)?;
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

fn metric_values(m: &BinaryMetrics) -> [(&'static str, Option<f64>); 5] {
    [
        ("AUC", m.auc),
        ("accuracy", Some(m.accuracy)),
        ("sensitivity", Some(m.sensitivity)),
        ("specificity", Some(m.specificity)),
        ("F1", Some(m.f1)),
    ]
}

fn model_rows(metrics: &ModelMetrics) -> Vec<(String, &'static str, Option<f64>)> {
    let mut rows = Vec::new();
    for (model, m) in [
        ("ensemble", &metrics.ensemble),
        ("branch U", &metrics.uniform),
        ("branch B", &metrics.balanced),
    ] {
        rows.extend(
            metric_values(m)
                .into_iter()
                .map(|(name, v)| (model.to_owned(), name, v)),
        );
    }
    rows.push((
        "ensemble".to_owned(),
        "attention in mask",
        metrics.attention_in_mask,
    ));
    rows
}

/// Mean and sd over evaluations of every (group, model, metric).
fn summarize(evaluations: &[Evaluation]) -> Vec<SummaryRow> {
    let mut collected: Vec<(String, String, String, Vec<f64>)> = Vec::new();
    let mut add = |group: &str, model: String, metric: &str, value: Option<f64>| {
        let Some(value) = value else { return };
        match collected
            .iter_mut()
            .find(|(g, m, n, _)| g == group && *m == model && n == metric)
        {
            Some((_, _, _, values)) => values.push(value),
            None => collected.push((group.into(), model, metric.into(), vec![value])),
        }
    };
    for e in evaluations {
        for (model, metric, value) in model_rows(&e.overall) {
            add("all", model, metric, value);
        }
        for (band, metrics) in &e.by_size {
            for (model, metric, value) in model_rows(metrics) {
                add(&format!("{} infection", band.name()), model, metric, value);
            }
        }
        add(
            "small infection, positive class",
            "ensemble".into(),
            "sensitivity",
            e.small_positive_sensitivity,
        );
    }
    collected
        .into_iter()
        .map(|(group, model, metric, values)| {
            let (mean, sd) = mean_sd(&values);
            SummaryRow {
                group,
                model,
                metric,
                mean,
                sd,
                folds: values.len(),
            }
        })
        .collect()
}

fn markdown_report(rows: &[SummaryRow], title: &str) -> String {
    let mut md = format!(
        "# {title}\n\nMean +- sd over folds (n = folds where the metric is defined). \
         ROC curves: `roc.png`; calibration of the ensemble: `calibration.png` \
         (all cases scored).\n\n\
         | group | model | metric | mean | sd | n |\n|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.4} | {} |",
            r.group, r.model, r.metric, r.mean, r.sd, r.folds
        );
    }
    md
}

/// `dsan eval`: scores a trained model (card + weights) on a labelled data folder.
pub fn eval_command(
    card: &Path,
    source: &DataSource,
    out: &Path,
    backend: Backend,
) -> anyhow::Result<()> {
    backend.run(|| match backend {
        Backend::Cpu => eval_on::<NdArray<f32>>(card, source, out),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => eval_on::<burn::backend::Wgpu>(card, source, out),
        #[cfg(feature = "cuda")]
        Backend::Cuda => eval_on::<burn::backend::Cuda>(card, source, out),
    })
}

fn eval_on<B: BurnBackend>(
    card_path: &Path,
    source: &DataSource,
    out: &Path,
) -> anyhow::Result<()> {
    let device = B::Device::default();
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

/// `dsan export`: the best model of a run as a half-precision weights file and
/// a model card (architecture, preprocessing, classes, data summary, the run's
/// validation metrics and those of `dsan eval` outputs, SHA-256); with
/// `default`, the card is also named in `out/models.json` (the page's default).
pub fn export_command(
    run: &Path,
    out: &Path,
    name: &str,
    version: &str,
    synthetic: bool,
    evaluations: &[PathBuf],
    default: bool,
) -> anyhow::Result<()> {
    let read = |file: &str| -> anyhow::Result<Vec<u8>> {
        let path = run.join(file);
        std::fs::read(&path).with_context(|| path.display().to_string())
    };
    let config: TrainConfig = serde_json::from_slice(&read("config.json")?)?;
    let data: DataSummary = serde_json::from_slice(&read("data.json")?)?;
    let device = Default::default();
    let model: Dsan<NdArray<f32>> = burn::module::Module::load_file(
        config.model.init::<NdArray<f32>>(&device),
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
    for path in evaluations {
        let value: serde_json::Value = serde_json::from_slice(
            &std::fs::read(path).with_context(|| path.display().to_string())?,
        )?;
        let evaluation: Evaluation = serde_json::from_value(value["evaluation"].clone())
            .with_context(|| format!("{}: not a dsan eval metrics.json", path.display()))?;
        let on = format!(
            "held-out set {} ({} cases), threshold 0.5",
            value["data"].as_str().unwrap_or("?"),
            value["cases"]
        );
        push_metrics(&mut metrics, &evaluation.overall, &on);
    }
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.to_owned(),
        version: version.to_owned(),
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
        limitations: if synthetic {
            "Trained on synthetic phantoms only: its outputs say nothing about real patients. Not a medical device.".into()
        } else {
            "Validated only on the data named here. Not a medical device.".into()
        },
    };
    let card_file = format!("{}.json", slug(name, version));
    let path = save_model_files(out, &card_file, &card, &bytes)?;
    if default {
        let index = out.join(MODEL_INDEX_FILE);
        let json = serde_json::to_string_pretty(&ModelIndex {
            default: Some(card_file),
        })?;
        std::fs::write(&index, json + "\n").with_context(|| index.display().to_string())?;
    }
    println!("{}", path.display());
    Ok(())
}

fn push_metrics(metrics: &mut Vec<Metric>, m: &ModelMetrics, on: &str) {
    for (model, metric, value) in model_rows(m) {
        if let Some(value) = value {
            metrics.push(Metric {
                name: format!("{metric} ({model})"),
                value,
                sd: None,
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
