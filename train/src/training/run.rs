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
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::model::{Dsan, DsanBranch, DsanLossConfig};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::branch::{BranchRun, LossSums, make_shards};
use super::config::{EpochLog, TrainConfig};
use super::schedule::StepRates;
use crate::data::dataset::PreparedCase;
use crate::data::sampler::{CaseSampler, Sampling, SizeBands};
use crate::evaluation::evaluate::{CasePrediction, predict_cases, score};
use crate::evaluation::plots::write_learning_curves;

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

pub(super) type FileRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The files of a run folder.
pub(super) struct RunFiles {
    pub(super) dir: PathBuf,
}

impl RunFiles {
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub(super) fn checkpoint(&self, name: &str) -> PathBuf {
        self.dir.join("checkpoint").join(name)
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
    let optim = || {
        AdamConfig::new()
            .with_weight_decay(
                (config.weight_decay > 0.0)
                    .then(|| WeightDecayConfig::new(config.weight_decay as f32)),
            )
            .init::<B, DsanBranch<B>>()
    };
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
    let mut rates = StepRates::new(
        config.lr_schedule,
        config.learning_rate,
        config.epochs * steps,
        state.epoch * steps,
    )?;
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
            let lr = rates.next_rate();
            for (run, sums) in [(&mut uniform, &mut sums_u), (&mut balanced, &mut sums_b)] {
                let picked: Vec<&PreparedCase> = run
                    .sampler
                    .draw(config.batch_size, &mut rng)
                    .into_iter()
                    .map(|i| train[i])
                    .collect();
                let shards = make_shards::<B>(&picked, config, &mut rng, devices);
                run.step(shards, device, lr, config, &loss, sums)?;
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
        let norm_cases = &train[..config.precise_bn.min(train.len())];
        if !norm_cases.is_empty() {
            uniform.recalibrate_norms(norm_cases, config, device);
            balanced.recalibrate_norms(norm_cases, config, device);
        }

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
        write_learning_curves(&files.path("learning-curves.png"), &log)?;
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
