//! The training loop of ../shared/DESIGN.md: branch U on uniformly drawn cases
//! and branch B on size-balanced draws, each minimising CE + lambda * attention
//! loss with its own Adam; augmentation on every draw; validation AUC of the
//! ensemble after every epoch, early stopping on it, the best model kept;
//! checkpoints every epoch so a run resumes where it stopped; a CSV and a
//! JSON-lines log; a progress bar with the loss and the throughput.
//!
//! Every random choice comes from the run's seed and the epoch number, so a
//! resumed run draws what an uninterrupted one would have drawn.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::model::{AttentionTargets, Dsan, DsanBranch, DsanConfig, DsanLossConfig};
use dsan_ct::preprocess::area_mean;
use dsan_ct::weights::Preprocessing;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::augment::Augmentation;
use crate::dataset::PreparedCase;
use crate::evaluate::{CasePrediction, input_tensor, predict_cases, score};
use crate::sampler::{CaseSampler, Sampling, SizeBands};

/// Everything a run is configured with (saved as `config.json` in the run folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The network (its `input` is the model grid).
    pub model: DsanConfig,
    /// How CT volumes become inputs.
    pub preprocessing: Preprocessing,
    /// Class names by output index.
    pub classes: Vec<String>,
    /// Index of the class whose probability is scored (AUC, decision).
    pub positive: usize,
    /// Most epochs to run.
    pub epochs: usize,
    /// Cases per optimiser step and branch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// `lambda` of `CE + lambda * L_att` (0 turns the attention loss off).
    pub attention_lambda: f64,
    /// Epochs without a better validation AUC before stopping.
    pub patience: usize,
    /// Seed of the weights, the draws and the augmentation.
    pub seed: u64,
    /// Training augmentation.
    pub augmentation: Augmentation,
}

/// One epoch's log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean total loss of branch U over the epoch's steps.
    pub loss_uniform: f64,
    /// Mean cross-entropy of branch U.
    pub ce_uniform: f64,
    /// Mean attention loss of branch U.
    pub attention_uniform: f64,
    /// Mean total loss of branch B.
    pub loss_balanced: f64,
    /// Mean cross-entropy of branch B.
    pub ce_balanced: f64,
    /// Mean attention loss of branch B.
    pub attention_balanced: f64,
    /// Validation AUC of branch U.
    pub val_auc_uniform: Option<f64>,
    /// Validation AUC of branch B.
    pub val_auc_balanced: Option<f64>,
    /// Validation AUC of the ensemble (the early-stopping criterion).
    pub val_auc: Option<f64>,
    /// Wall time of the epoch's training steps, s.
    pub train_seconds: f64,
    /// Training throughput: cases through both branches per second.
    pub cases_per_second: f64,
}

/// Where a run stands; written with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    /// Epochs completed.
    epoch: usize,
    /// Best validation AUC so far and its epoch.
    best: Option<(f64, usize)>,
    /// Epochs since the best.
    stale: usize,
}

/// What a finished run produced.
pub struct TrainOutcome<B: Backend> {
    /// The best model (by validation AUC; the last one without validation).
    pub model: Dsan<B>,
    /// Its epoch.
    pub best_epoch: usize,
    /// Its validation AUC.
    pub best_val_auc: Option<f64>,
    /// Its predictions on the validation cases.
    pub validation: Vec<CasePrediction>,
    /// Every epoch's log, including those of an earlier, resumed run.
    pub log: Vec<EpochLog>,
    /// Tertiles of the training set's infection ratios (the size bands'
    /// edges), so held-out cases are banded as in training.
    pub tertiles: [f64; 2],
}

type FileRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The files of a run folder.
struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn checkpoint(&self, name: &str) -> PathBuf {
        self.dir.join("checkpoint").join(name)
    }
}

/// One branch being trained: its network, optimiser and sampler.
struct BranchRun<B: AutodiffBackend, O> {
    name: &'static str,
    branch: DsanBranch<B>,
    optim: O,
    sampler: CaseSampler,
}

#[derive(Default, Clone, Copy)]
struct LossSums {
    total: f64,
    ce: f64,
    attention: f64,
    steps: usize,
}

impl LossSums {
    fn mean(&self) -> [f64; 3] {
        let n = self.steps.max(1) as f64;
        [self.total / n, self.ce / n, self.attention / n]
    }
}

/// Initialises every parameter of the module it visits. Burn initialises
/// parameters lazily, and each clone (or fork to a device) of a module not yet
/// initialised would draw weights of its own.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        param.val();
    }
}

impl<B: AutodiffBackend, O: Optimizer<DsanBranch<B>, B>> BranchRun<B, O> {
    /// One optimiser step on a batch split into `shards`, one per device
    /// (data parallel): each device runs its shard through its copy of the
    /// branch, the shards' losses weighted by their share of the batch, and
    /// Burn's `step_multi` sums the gradients; the branch then returns to
    /// `main`. A single shard is the plain step. BatchNorm normalises each
    /// shard by its own statistics.
    fn step(
        &mut self,
        shards: Vec<Batch<B>>,
        main: &B::Device,
        config: &TrainConfig,
        loss: &DsanLossConfig,
        sums: &mut LossSums,
    ) -> anyhow::Result<()> {
        self.branch.visit(&mut Materialize);
        let cases: usize = shards.iter().map(Batch::len).sum();
        let parallel = shards.len() > 1;
        let mut grads = Vec::with_capacity(shards.len());
        let [mut total, mut ce, mut attention] = [0.0f64; 3];
        for batch in shards {
            let device = batch.input.device();
            let weight = batch.len() as f64 / cases as f64;
            let branch = if parallel {
                self.branch.clone().fork(&device)
            } else {
                self.branch.clone()
            };
            let output = branch.forward(batch.input);
            let terms = loss.loss(&config.model, &output, batch.labels, &batch.targets);
            let shard_total: f64 = terms.total.clone().into_scalar().elem();
            ensure!(
                shard_total.is_finite(),
                "branch {}: the loss is {shard_total}",
                self.name
            );
            total += weight * shard_total;
            ce += weight * terms.cross_entropy.into_scalar().elem::<f64>();
            attention += weight * terms.attention.into_scalar().elem::<f64>();
            let weighted = if parallel {
                terms.total.mul_scalar(weight)
            } else {
                terms.total
            };
            grads.push((
                GradientsParams::from_grads(weighted.backward(), &branch),
                device.to_id(),
            ));
        }
        sums.total += total;
        sums.ce += ce;
        sums.attention += attention;
        sums.steps += 1;
        let lr = config.learning_rate;
        self.branch = match grads.pop() {
            Some((single, _)) if grads.is_empty() => {
                self.optim.step(lr, self.branch.clone(), single)
            }
            last => {
                grads.extend(last);
                self.optim
                    .step_multi(lr, self.branch.clone(), MultiGradientsParams { grads })
                    .fork(main)
            }
        };
        Ok(())
    }

    fn save(&self, files: &RunFiles) -> anyhow::Result<()> {
        let recorder = FileRecorder::new();
        self.branch
            .clone()
            .save_file(files.checkpoint(self.name), &recorder)
            .with_context(|| format!("saving branch {}", self.name))?;
        Recorder::<B>::record(
            &recorder,
            self.optim.to_record(),
            files.checkpoint(&format!("optim-{}", self.name)),
        )
        .with_context(|| format!("saving the optimiser of branch {}", self.name))?;
        Ok(())
    }

    fn load(mut self, files: &RunFiles, device: &B::Device) -> anyhow::Result<Self> {
        let recorder = FileRecorder::new();
        self.branch = self
            .branch
            .load_file(files.checkpoint(self.name), &recorder, device)
            .with_context(|| format!("loading branch {}", self.name))?;
        let record = Recorder::<B>::load(
            &recorder,
            files.checkpoint(&format!("optim-{}", self.name)),
            device,
        )
        .with_context(|| format!("loading the optimiser of branch {}", self.name))?;
        self.optim = self.optim.load_record(record);
        Ok(self)
    }
}

/// A batch on the device.
struct Batch<B: Backend> {
    input: Tensor<B, 5>,
    labels: Tensor<B, 1, Int>,
    targets: AttentionTargets<B>,
}

impl<B: Backend> Batch<B> {
    fn len(&self) -> usize {
        self.labels.dims()[0]
    }
}

/// The augmented `cases` as one batch per device, in order (as evenly as
/// possible; fewer shards than devices when the batch is smaller).
fn make_shards<B: Backend>(
    cases: &[&PreparedCase],
    config: &TrainConfig,
    rng: &mut StdRng,
    devices: &[B::Device],
) -> Vec<Batch<B>> {
    let size = cases.len().div_ceil(devices.len().max(1)).max(1);
    cases
        .chunks(size)
        .zip(devices)
        .map(|(shard, device)| make_batch(shard, config, rng, device))
        .collect()
}

fn make_batch<B: Backend>(
    cases: &[&PreparedCase],
    config: &TrainConfig,
    rng: &mut StdRng,
    device: &B::Device,
) -> Batch<B> {
    let grid = config.model.input;
    let feature_grid = config.model.feature_grid();
    let cells: usize = feature_grid.iter().product();
    let n = cases.len();
    let mut inputs = Vec::with_capacity(n * grid.iter().product::<usize>());
    let mut masks = Vec::with_capacity(n * cells);
    let mut present = Vec::with_capacity(n);
    for case in cases {
        let (input, target) =
            config
                .augmentation
                .apply(&case.input, case.infection.as_deref(), grid, rng);
        inputs.extend(input);
        match target {
            Some(target) => {
                masks.extend(area_mean(&target, grid, feature_grid));
                present.push(1.0f32);
            }
            None => {
                masks.extend(std::iter::repeat_n(0.0f32, cells));
                present.push(0.0);
            }
        }
    }
    let labels: Vec<i64> = cases.iter().map(|c| c.label as i64).collect();
    let [d, h, w] = feature_grid;
    Batch {
        input: input_tensor(inputs, n, grid, device),
        labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        targets: AttentionTargets {
            masks: Tensor::from_data(TensorData::new(masks, [n, d, h, w]), device),
            present: Tensor::from_data(TensorData::new(present, [n]), device),
        },
    }
}

fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Trains both branches on `train`, validating on `val`, writing the run into
/// `out` (config, logs, checkpoints, best model). With `resume`, continues
/// from the checkpoint in `out` (refused if its config differs in more than
/// the number of epochs and the patience). Each step's batch is split over
/// `devices` (data parallel); the first holds the model between steps.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    train: &[&PreparedCase],
    val: &[&PreparedCase],
    out: &Path,
    resume: bool,
    devices: &[B::Device],
) -> anyhow::Result<TrainOutcome<B::InnerBackend>> {
    let Some(device) = devices.first() else {
        anyhow::bail!("no device to train on");
    };
    ensure!(!train.is_empty(), "no training cases");
    ensure!(config.batch_size > 0, "batch size must be positive");
    config.model.validate()?;
    let files = RunFiles {
        dir: out.to_path_buf(),
    };
    std::fs::create_dir_all(files.checkpoint(""))
        .with_context(|| files.checkpoint("").display().to_string())?;
    let config_path = files.path("config.json");
    if resume {
        let saved: TrainConfig = serde_json::from_slice(
            &std::fs::read(&config_path).with_context(|| config_path.display().to_string())?,
        )?;
        let comparable = |c: &TrainConfig| TrainConfig {
            epochs: 0,
            patience: 0,
            ..c.clone()
        };
        ensure!(
            comparable(&saved) == comparable(config),
            "{} was written with another configuration; resume with the same options \
             (only --epochs and --patience may change)",
            config_path.display()
        );
    }
    std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)?;

    let labels: Vec<usize> = train.iter().map(|c| c.label).collect();
    let ratios: Vec<Option<f64>> = train.iter().map(|c| c.summary.infection_ratio).collect();
    let bands = SizeBands::from_ratios(&ratios);
    let uniform_sampler = CaseSampler::new(Sampling::Uniform, &labels, &bands.bands)?;
    let balanced_sampler = CaseSampler::new(Sampling::SizeBalanced, &labels, &bands.bands)?;
    let design: Vec<serde_json::Value> = train
        .iter()
        .enumerate()
        .map(|(i, case)| {
            serde_json::json!({
                "case_id": case.case_id,
                "label": case.label,
                "infection_ratio": case.summary.infection_ratio,
                "band": bands.bands[i],
                "p_uniform": uniform_sampler.probabilities()[i],
                "p_balanced": balanced_sampler.probabilities()[i],
            })
        })
        .collect();
    std::fs::write(
        files.path("sampling.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "tertiles": bands.tertiles,
            "cases": design,
        }))?,
    )?;

    B::seed(device, config.seed);
    let model = config.model.init::<B>(device);
    let optim = || AdamConfig::new().init::<B, DsanBranch<B>>();
    let mut uniform = BranchRun {
        name: "uniform",
        branch: model.uniform,
        optim: optim(),
        sampler: uniform_sampler,
    };
    let mut balanced = BranchRun {
        name: "balanced",
        branch: model.balanced,
        optim: optim(),
        sampler: balanced_sampler,
    };
    let state_path = files.checkpoint("state.json");
    let mut state = RunState {
        epoch: 0,
        best: None,
        stale: 0,
    };
    let mut log: Vec<EpochLog> = Vec::new();
    if resume {
        state = serde_json::from_slice(
            &std::fs::read(&state_path).with_context(|| state_path.display().to_string())?,
        )?;
        uniform = uniform.load(&files, device)?;
        balanced = balanced.load(&files, device)?;
        log = read_log(&files.path("log.jsonl"))?;
        log.truncate(state.epoch);
        let lines: Vec<String> = log
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        std::fs::write(files.path("log.jsonl"), lines.join("\n") + "\n")?;
    } else {
        std::fs::write(files.path("log.jsonl"), "")?;
    }

    let loss = DsanLossConfig::new().with_attention_lambda(config.attention_lambda);
    let steps = train.len().div_ceil(config.batch_size);
    while state.epoch < config.epochs && state.stale < config.patience.max(1) {
        let epoch = state.epoch + 1;
        let mut rng = epoch_rng(config.seed, epoch);
        let bar = ProgressBar::new(steps as u64).with_style(
            ProgressStyle::with_template(
                "epoch {prefix} {bar:30} {pos}/{len} steps {msg} [{elapsed}<{eta}]",
            )
            .context("progress template")?,
        );
        bar.set_prefix(format!("{epoch}/{}", config.epochs));
        let started = Instant::now();
        let (mut sums_u, mut sums_b) = (LossSums::default(), LossSums::default());
        for _ in 0..steps {
            for (run, sums) in [(&mut uniform, &mut sums_u), (&mut balanced, &mut sums_b)] {
                let picked: Vec<&PreparedCase> = run
                    .sampler
                    .draw(config.batch_size, &mut rng)
                    .into_iter()
                    .map(|i| train[i])
                    .collect();
                let shards = make_shards::<B>(&picked, config, &mut rng, devices);
                run.step(shards, device, config, &loss, sums)?;
            }
            let seconds = started.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss U {:.4} B {:.4} | {:.2} cases/s",
                sums_u.mean()[0],
                sums_b.mean()[0],
                (2 * sums_u.steps * config.batch_size) as f64 / seconds.max(1e-9)
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();

        let model = Dsan {
            uniform: uniform.branch.valid(),
            balanced: balanced.branch.valid(),
        };
        let validation = predict_cases(&model, &config.model, val, device)?;
        let scored = score(&validation, config.positive, 0.5);
        let [loss_uniform, ce_uniform, attention_uniform] = sums_u.mean();
        let [loss_balanced, ce_balanced, attention_balanced] = sums_b.mean();
        let entry = EpochLog {
            epoch,
            loss_uniform,
            ce_uniform,
            attention_uniform,
            loss_balanced,
            ce_balanced,
            attention_balanced,
            val_auc_uniform: scored.uniform.auc,
            val_auc_balanced: scored.balanced.auc,
            val_auc: scored.ensemble.auc,
            train_seconds,
            cases_per_second: (2 * steps * config.batch_size) as f64 / train_seconds.max(1e-9),
        };
        eprintln!(
            "epoch {epoch}: loss U {loss_uniform:.4} B {loss_balanced:.4}, val AUC {}, {:.1} s, {:.2} cases/s",
            entry.val_auc.map_or("n/a".into(), |a| format!("{a:.4}")),
            train_seconds,
            entry.cases_per_second
        );
        let improved = match (entry.val_auc, state.best) {
            (Some(auc), Some((best, _))) => auc > best,
            (Some(_), None) => true,
            (None, _) => true,
        };
        if improved {
            state.best = Some((entry.val_auc.unwrap_or(f64::NAN), epoch));
            state.stale = 0;
            model
                .clone()
                .save_file(files.path("best"), &FileRecorder::new())
                .context("saving the best model")?;
            std::fs::write(
                files.path("validation.json"),
                serde_json::to_vec_pretty(&validation)?,
            )?;
        } else {
            state.stale += 1;
        }
        state.epoch = epoch;
        uniform.save(&files)?;
        balanced.save(&files)?;
        std::fs::write(&state_path, serde_json::to_vec_pretty(&state)?)?;
        append_log(&files, &entry)?;
        log.push(entry);
    }

    let inner = config.model.init::<B::InnerBackend>(device);
    let best = inner
        .load_file(files.path("best"), &FileRecorder::new(), device)
        .context("loading the best model")?;
    let validation: Vec<CasePrediction> = match std::fs::read(files.path("validation.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => Vec::new(),
    };
    let (best_val_auc, best_epoch) = state.best.unwrap_or((f64::NAN, state.epoch));
    Ok(TrainOutcome {
        model: best,
        best_epoch,
        best_val_auc: best_val_auc.is_finite().then_some(best_val_auc),
        validation,
        log,
        tertiles: bands.tertiles,
    })
}

const CSV_HEADER: &str = "epoch,loss_uniform,ce_uniform,attention_uniform,loss_balanced,ce_balanced,attention_balanced,val_auc_uniform,val_auc_balanced,val_auc,train_seconds,cases_per_second";

fn append_log(files: &RunFiles, entry: &EpochLog) -> anyhow::Result<()> {
    let mut jsonl = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(files.path("log.jsonl"))?;
    writeln!(jsonl, "{}", serde_json::to_string(entry)?)?;
    // The CSV is rewritten from the JSON lines, so a resumed run never duplicates rows.
    let entries = read_log(&files.path("log.jsonl"))?;
    let mut csv = String::from(CSV_HEADER);
    csv.push('\n');
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for e in entries {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            e.epoch,
            e.loss_uniform,
            e.ce_uniform,
            e.attention_uniform,
            e.loss_balanced,
            e.ce_balanced,
            e.attention_balanced,
            opt(e.val_auc_uniform),
            opt(e.val_auc_balanced),
            opt(e.val_auc),
            e.train_seconds,
            e.cases_per_second
        ));
    }
    std::fs::write(files.path("log.csv"), csv)?;
    Ok(())
}

fn read_log(path: &Path) -> anyhow::Result<Vec<EpochLog>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::CaseSummary;
    use burn::backend::{Autodiff, NdArray};

    type Train = Autodiff<NdArray<f32>>;

    /// Four cases of the tiny grid: class 1 has a bright blob (its infection
    /// mask), class 0 a faint one elsewhere.
    fn cases(config: &TrainConfig) -> Vec<PreparedCase> {
        let [d, h, w] = config.model.input;
        (0..4)
            .map(|n| {
                let label = n % 2;
                let centre = if label == 1 {
                    [8.0, 10.0, 10.0]
                } else {
                    [8.0, 22.0, 22.0]
                };
                let inside: Vec<f32> = (0..d * h * w)
                    .map(|x| {
                        let p = [(x / (h * w)) as f64, ((x / w) % h) as f64, (x % w) as f64];
                        let r2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
                        f32::from(u8::from(r2 < 16.0 + n as f64))
                    })
                    .collect();
                let level = if label == 1 { 0.8 } else { 0.35 };
                PreparedCase {
                    case_id: format!("case-{n}"),
                    patient_id: format!("patient-{n}"),
                    label,
                    input: inside.iter().map(|m| 0.1 + m * level).collect(),
                    infection: Some(inside),
                    summary: CaseSummary {
                        lung_ml: 4000.0,
                        infection_ratio: Some(0.01 * (n + 1) as f64),
                        infection_ml: Some(40.0 * (n + 1) as f64),
                    },
                }
            })
            .collect()
    }

    /// One epoch of the tiny network without augmentation.
    fn tiny_config(batch_size: usize, learning_rate: f64, seed: u64) -> TrainConfig {
        TrainConfig {
            model: DsanConfig::tiny(),
            preprocessing: Preprocessing::default(),
            classes: vec!["CAP".into(), "COVID-19".into()],
            positive: 1,
            epochs: 1,
            batch_size,
            learning_rate,
            attention_lambda: 1.0,
            patience: 1,
            seed,
            augmentation: Augmentation::NONE,
        }
    }

    /// Data parallel: a batch of one case twice, split over two devices (one
    /// case each, so each shard's BatchNorm statistics are the batch's), takes
    /// the same step as the whole batch on one device.
    #[test]
    fn a_batch_split_over_two_devices_takes_the_one_device_step() {
        let config = tiny_config(2, 1e-2, 5);
        let data = cases(&config);
        let picked = [&data[1], &data[1]];
        let device = burn::backend::ndarray::NdArrayDevice::Cpu;
        let run = || {
            Train::seed(&device, config.seed);
            let model = config.model.init::<Train>(&device);
            BranchRun {
                name: "uniform",
                branch: model.uniform,
                optim: AdamConfig::new().init::<Train, DsanBranch<Train>>(),
                sampler: CaseSampler::new(
                    Sampling::Uniform,
                    &[1, 1],
                    &[crate::sampler::SizeBand::Small; 2],
                )
                .unwrap(),
            }
        };
        let loss = DsanLossConfig::new();
        let all: Vec<&PreparedCase> = data.iter().collect();
        let probe = make_batch::<Train>(&all, &config, &mut StdRng::seed_from_u64(0), &device);
        let logits = |run: &BranchRun<Train, _>| -> Vec<f32> {
            run.branch
                .forward(probe.input.clone())
                .logits
                .into_data()
                .to_vec()
                .unwrap()
        };
        let before = logits(&run());
        let mut one = run();
        let mut sums_one = LossSums::default();
        let batch = make_batch::<Train>(&picked, &config, &mut StdRng::seed_from_u64(1), &device);
        one.step(vec![batch], &device, &config, &loss, &mut sums_one)
            .unwrap();
        let mut two = run();
        let mut sums_two = LossSums::default();
        let shards = make_shards::<Train>(
            &picked,
            &config,
            &mut StdRng::seed_from_u64(1),
            &[device, device],
        );
        assert_eq!(shards.iter().map(Batch::len).collect::<Vec<_>>(), [1, 1]);
        two.step(shards, &device, &config, &loss, &mut sums_two)
            .unwrap();
        assert!(
            (sums_one.total - sums_two.total).abs() < 1e-6,
            "loss {} vs {}",
            sums_one.total,
            sums_two.total
        );
        let (after_one, after_two) = (logits(&one), logits(&two));
        let moved = before
            .iter()
            .zip(&after_one)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let apart = after_one
            .iter()
            .zip(&after_two)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "the step changed the logits by {moved}");
        assert!(
            apart < 1e-4 * moved.max(1.0),
            "{after_one:?} vs {after_two:?}"
        );
    }

    /// A tiny network fitted to one fixed batch: the loss (CE plus the
    /// attention loss against the masks) goes down.
    #[test]
    fn training_steps_lower_the_loss_of_a_fixed_batch() {
        let config = tiny_config(4, 1e-3, 3);
        let data = cases(&config);
        let picked: Vec<&PreparedCase> = data.iter().collect();
        let device = Default::default();
        Train::seed(&device, config.seed);
        let model = config.model.init::<Train>(&device);
        let labels: Vec<usize> = picked.iter().map(|c| c.label).collect();
        let bands = vec![crate::sampler::SizeBand::Small; 4];
        let mut run = BranchRun {
            name: "uniform",
            branch: model.uniform,
            optim: AdamConfig::new().init::<Train, DsanBranch<Train>>(),
            sampler: CaseSampler::new(Sampling::Uniform, &labels, &bands).unwrap(),
        };
        let loss = DsanLossConfig::new();
        let mut rng = StdRng::seed_from_u64(0);
        let mut totals = Vec::new();
        for _ in 0..12 {
            let mut sums = LossSums::default();
            let batch = make_batch::<Train>(&picked, &config, &mut rng, &device);
            run.step(vec![batch], &device, &config, &loss, &mut sums)
                .unwrap();
            totals.push(sums.total);
        }
        let first = totals[0];
        let last = totals[totals.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(last < 0.8 * first, "loss {totals:?}");
    }
}
