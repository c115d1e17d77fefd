//! One branch's optimiser step (data parallel over devices when asked) and
//! the batches it takes: augmented cases with their attention targets.

use anyhow::{Context, ensure};
use burn::module::{ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::Recorder;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::model::{AttentionTargets, DsanBranch, DsanLossConfig, NORM_MOMENTUM};
use dsan_ct::preprocess::area_mean;
use rand::rngs::StdRng;

use super::config::TrainConfig;
use super::run::{FileRecorder, RunFiles};
use crate::data::dataset::PreparedCase;
use crate::data::sampler::CaseSampler;
use crate::evaluation::evaluate::input_tensor;

/// One branch being trained: its network, optimiser and sampler.
pub(crate) struct BranchRun<B: AutodiffBackend, O> {
    pub(crate) name: &'static str,
    pub(crate) branch: DsanBranch<B>,
    pub(crate) optim: O,
    pub(crate) sampler: CaseSampler,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct LossSums {
    pub(super) total: f64,
    pub(super) ce: f64,
    pub(super) attention: f64,
    pub(super) steps: usize,
}

impl LossSums {
    pub(super) fn mean(&self) -> [f64; 3] {
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
    pub(crate) fn step(
        &mut self,
        shards: Vec<Batch<B>>,
        main: &B::Device,
        lr: f64,
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

    /// Precise BatchNorm (Wu and Johnson, "Rethinking 'Batch' in BatchNorm",
    /// 2021): every BatchNorm's running statistics become the mean of their
    /// values over `cases` in training-mode batches of the run's batch size,
    /// without augmentation; the weights are unchanged. At the batch sizes a
    /// CPU trains with, the running averages of the last steps are far from
    /// the statistics of the weights being validated (a validation AUC of
    /// 0.31 with them, 0.81 with these, in `train/scripts/torch_surrogate.py`).
    pub(crate) fn recalibrate_norms(
        &mut self,
        cases: &[&PreparedCase],
        config: &TrainConfig,
        device: &B::Device,
    ) {
        for (k, chunk) in cases.chunks(config.batch_size.max(1)).enumerate() {
            self.branch.set_norm_momentum(1.0 / (k + 1) as f64);
            let inputs = chunk.iter().flat_map(|c| c.input.iter().copied()).collect();
            self.branch.forward(input_tensor(
                inputs,
                chunk.len(),
                config.model.input,
                device,
            ));
        }
        self.branch.set_norm_momentum(NORM_MOMENTUM);
    }

    pub(super) fn save(&self, files: &RunFiles) -> anyhow::Result<()> {
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

    pub(super) fn load(mut self, files: &RunFiles, device: &B::Device) -> anyhow::Result<Self> {
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
pub(crate) struct Batch<B: Backend> {
    /// Inputs `[n, 1, d, h, w]`.
    pub(crate) input: Tensor<B, 5>,
    /// Class indices `[n]`.
    pub(crate) labels: Tensor<B, 1, Int>,
    /// Infection masks on the feature grid.
    pub(crate) targets: AttentionTargets<B>,
}

impl<B: Backend> Batch<B> {
    fn len(&self) -> usize {
        self.labels.dims()[0]
    }
}

/// The augmented `cases` as one batch per device, in order (as evenly as
/// possible; fewer shards than devices when the batch is smaller).
pub(super) fn make_shards<B: Backend>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use burn::optim::AdamConfig;
    use dsan_ct::CpuBackend;
    use dsan_ct::model::DsanConfig;
    use dsan_ct::probe::seeded_model;
    use dsan_ct::weights::Preprocessing;
    use rand::SeedableRng;

    use crate::data::augment::Augmentation;
    use crate::data::dataset::CaseSummary;
    use crate::data::sampler::{Sampling, SizeBand};
    use crate::training::schedule::LrSchedule;

    type Train = Autodiff<CpuBackend>;

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
            lr_schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            attention_lambda: 1.0,
            patience: 1,
            precise_bn: 0,
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
        let device = Default::default();
        let run = || {
            let model = seeded_model::<Train>(&config.model, config.seed, &device).unwrap();
            BranchRun {
                name: "uniform",
                branch: model.uniform,
                optim: AdamConfig::new().init::<Train, DsanBranch<Train>>(),
                sampler: CaseSampler::new(Sampling::Uniform, &[1, 1], &[SizeBand::Small; 2])
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
        one.step(
            vec![batch],
            &device,
            config.learning_rate,
            &config,
            &loss,
            &mut sums_one,
        )
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
        two.step(
            shards,
            &device,
            config.learning_rate,
            &config,
            &loss,
            &mut sums_two,
        )
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

    /// Branch U of the seeded model, with its own Adam, drawing from `picked`.
    fn uniform_run<B: AutodiffBackend>(
        config: &TrainConfig,
        picked: &[&PreparedCase],
        device: &B::Device,
    ) -> BranchRun<B, impl Optimizer<DsanBranch<B>, B>> {
        let model = seeded_model::<B>(&config.model, config.seed, device).unwrap();
        let labels: Vec<usize> = picked.iter().map(|c| c.label).collect();
        let bands = vec![SizeBand::Small; picked.len()];
        BranchRun {
            name: "uniform",
            branch: model.uniform,
            optim: AdamConfig::new().init::<B, DsanBranch<B>>(),
            sampler: CaseSampler::new(Sampling::Uniform, &labels, &bands).unwrap(),
        }
    }

    /// `steps` optimiser steps on `device` on the batch of all of `picked`;
    /// each step's loss.
    fn fixed_batch_steps<B: AutodiffBackend, O: Optimizer<DsanBranch<B>, B>>(
        run: &mut BranchRun<B, O>,
        picked: &[&PreparedCase],
        config: &TrainConfig,
        rng: &mut StdRng,
        steps: usize,
        device: &B::Device,
    ) -> Vec<f64> {
        let loss = DsanLossConfig::new();
        (0..steps)
            .map(|_| {
                let mut sums = LossSums::default();
                let batch = make_batch::<B>(picked, config, rng, device);
                run.step(
                    vec![batch],
                    device,
                    config.learning_rate,
                    config,
                    &loss,
                    &mut sums,
                )
                .unwrap();
                sums.total
            })
            .collect()
    }

    /// A tiny network fitted to one fixed batch: the loss (CE plus the
    /// attention loss against the masks) goes down.
    #[test]
    fn training_steps_lower_the_loss_of_a_fixed_batch() {
        let config = tiny_config(4, 1e-3, 3);
        let data = cases(&config);
        let picked: Vec<&PreparedCase> = data.iter().collect();
        let device = Default::default();
        let mut run = uniform_run::<Train>(&config, &picked, &device);
        let totals = fixed_batch_steps(
            &mut run,
            &picked,
            &config,
            &mut StdRng::seed_from_u64(0),
            12,
            &device,
        );
        let first = totals[0];
        let last = totals[totals.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(last < 0.8 * first, "loss {totals:?}");
    }

    /// After training steps, the running averages are the steps' and the
    /// network in inference mode gives other logits than in training mode on
    /// the same batch; re-estimated on that batch alone (one chunk), they are
    /// its statistics, so both modes agree, and training goes on with the
    /// usual momentum.
    #[test]
    fn recalibrated_norms_hold_the_batch_statistics() {
        let config = tiny_config(4, 1e-2, 3);
        let data = cases(&config);
        let picked: Vec<&PreparedCase> = data.iter().collect();
        let device = Default::default();
        let mut run = uniform_run::<Train>(&config, &picked, &device);
        let mut rng = StdRng::seed_from_u64(0);
        fixed_batch_steps(&mut run, &picked, &config, &mut rng, 3, &device);
        let probe = make_batch::<Train>(&picked, &config, &mut rng, &device);
        let logits = |run: &BranchRun<Train, _>, training: bool| -> Vec<f32> {
            let logits = if training {
                run.branch.forward(probe.input.clone()).logits.inner()
            } else {
                run.branch
                    .valid()
                    .forward(probe.input.clone().inner())
                    .logits
            };
            logits.into_data().to_vec().unwrap()
        };
        let gap = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let before = gap(&logits(&run, false), &logits(&run, true));
        run.recalibrate_norms(&picked, &config, &device);
        let after = gap(&logits(&run, false), &logits(&run, true));
        assert!(
            before > 1e-2,
            "inference and training modes differ by {before} before"
        );
        assert!(
            after < 1e-4,
            "and by {after} after re-estimating the statistics"
        );
    }

    /// The same weights (through the half-precision record), the same batch:
    /// LibTorch's training step of the web-default branch gives Flex's loss
    /// to 1e-4, and the step after it (which shows that the first update
    /// agreed) to 1e-3: Adam's first update divides each gradient by its own
    /// magnitude, so float rounding in near-zero gradients moves weights by up
    /// to the learning rate.
    #[cfg(feature = "libtorch")]
    #[test]
    fn libtorch_takes_the_steps_flex_takes() {
        use crate::compute::libtorch::{Torch, cpu};

        fn losses<B: AutodiffBackend>(
            config: &TrainConfig,
            picked: &[&PreparedCase],
            device: &B::Device,
        ) -> Vec<f64> {
            let mut run = uniform_run::<B>(config, picked, device);
            let mut rng = StdRng::seed_from_u64(1);
            fixed_batch_steps(&mut run, picked, config, &mut rng, 2, device)
        }
        let config = TrainConfig {
            model: DsanConfig::web_default(),
            ..tiny_config(2, 1e-3, 9)
        };
        let data = cases(&config);
        let picked = [&data[0], &data[1]];
        let flex = losses::<Train>(&config, &picked, &Default::default());
        let torch = losses::<Autodiff<Torch>>(&config, &picked, &cpu());
        assert!(
            (flex[0] - torch[0]).abs() < 1e-4,
            "Flex {flex:?} vs LibTorch {torch:?}"
        );
        assert!(
            (flex[1] - torch[1]).abs() < 1e-3,
            "Flex {flex:?} vs LibTorch {torch:?}"
        );
        assert!(
            (flex[0] - flex[1]).abs() > 1e-4,
            "the first step moved nothing: {flex:?}"
        );
    }
}
