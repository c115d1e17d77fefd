//! `dsan train`: its options, the data it reads, the split by patient and the
//! devices a run is spread over; the run itself is [`super::run`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::ensure;
use burn::prelude::{Backend as BurnBackend, DeviceOps};
use burn::tensor::backend::{AutodiffBackend, DeviceId};
use dsan_ct::pipeline::positive_class;
use dsan_ct::weights::Preprocessing;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::run::train;
use super::schedule::LrSchedule;
use crate::commands::Preset;
use crate::compute::{Backend, OnBackend};
use crate::data::augment::Augmentation;
use crate::data::dataset::{Dataset, PreparedCase, Reading, load_dataset};
use crate::data::folds::patient_folds;
use crate::data::layouts::{Layout, case_records};
use crate::data::slice_images::SliceImages;
use crate::evaluation::evaluate::{Evaluation, evaluate};

/// Options shared by `dsan train` and `dsan cv`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainOptions {
    #[command(flatten)]
    pub source: DataSource,
    /// Network preset.
    #[arg(long, value_enum, default_value_t = Preset::WebDefault)]
    pub preset: Preset,
    /// BasicBlocks in each of the four stages, in place of the preset's
    /// (e.g. `1,1,1,1`, a ResNet-10 backbone; the card records them).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
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
    /// How the learning rate changes over the run.
    #[arg(long, value_enum, default_value_t = LrSchedule::Cosine)]
    pub lr_schedule: LrSchedule,
    /// Adam's weight decay.
    #[arg(long, default_value_t = 1e-5)]
    pub weight_decay: f64,
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
    /// Training cases whose batch statistics replace BatchNorm's running
    /// averages before each validation (precise BatchNorm; 0 keeps the
    /// running averages).
    #[arg(long, default_value_t = 96)]
    pub precise_bn: usize,
    /// Set everything outside the lung mask to the bottom of the HU window
    /// (recorded in the card, so the page prepares inputs the same way).
    #[arg(long)]
    pub mask_outside_lungs: bool,
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
    pub(crate) fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut model = self.preset.config().with_num_classes(self.classes.len());
        if let Some(layers) = &self.layers {
            model.layers = layers.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!("--layers takes 4 block counts, got {}", layers.len())
            })?;
        }
        model.validate()?;
        let positive = positive_class(&self.classes).unwrap_or(self.classes.len() - 1);
        Ok(TrainConfig {
            model,
            preprocessing: Preprocessing {
                mask_outside_lungs: self.mask_outside_lungs,
                ..Preprocessing::default()
            },
            classes: self.classes.clone(),
            positive,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            lr_schedule: self.lr_schedule,
            weight_decay: self.weight_decay,
            attention_lambda: self.attention_lambda,
            patience: self.patience,
            precise_bn: self.precise_bn,
            seed: self.seed,
            augmentation: if self.no_augment {
                Augmentation::NONE
            } else {
                Augmentation::default()
            },
        })
    }

    pub(crate) fn dataset(&self, config: &TrainConfig) -> anyhow::Result<Dataset> {
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
pub(crate) fn read_dataset(
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
pub(crate) struct DataSummary {
    /// The data folder.
    pub(crate) data: String,
    /// Case ids trained on.
    pub(crate) train_cases: Vec<String>,
    /// Case ids validated on (early stopping).
    pub(crate) val_cases: Vec<String>,
    /// Training cases per class.
    pub(crate) cases_per_class: Vec<(String, u64)>,
    /// The best model's validation metrics.
    pub(crate) validation: Option<Evaluation>,
}

/// Splits `cases` by patient: every `k`-th patient group (fold 0 of `k`) is held out.
pub(crate) fn split_by_patient<'a>(
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
    options.backend.execute(TrainTask {
        options,
        out,
        resume,
    })
}

struct TrainTask<'a> {
    options: &'a TrainOptions,
    out: &'a Path,
    resume: bool,
}

impl OnBackend for TrainTask<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        train_on::<B>(self.options, self.out, self.resume, device)
    }
}

fn train_on<B: AutodiffBackend>(
    options: &TrainOptions,
    out: &Path,
    resume: bool,
    first: B::Device,
) -> anyhow::Result<()> {
    let config = options.config()?;
    let devices = numbered_devices::<B>(first, options.devices)?;
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

/// The backend's devices `0..n` of the kind of `first`; refused when it has
/// fewer numbered devices (the CPU backends are one device on every core,
/// wgpu's default adapter one).
pub(crate) fn numbered_devices<B: BurnBackend>(
    first: B::Device,
    n: usize,
) -> anyhow::Result<Vec<B::Device>> {
    ensure!(n >= 1, "--devices must be at least 1");
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
