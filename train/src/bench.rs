//! Timings of `dsan train`'s own training step and of the two-branch
//! inference forward on each CPU backend this build has, for `cargo bench
//! --bench train_step` (which adds PyTorch's step as the reference). The step
//! is [`crate::training::branch`]'s: forward, CE + attention loss against
//! masks on the feature grid, backward, Adam.

use std::time::Instant;

use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::model::{AttentionTargets, DsanBranch, DsanConfig, DsanLossConfig};
use dsan_ct::weights::Preprocessing;

use crate::compute::{Backend as Compute, OnBackend};
use crate::data::augment::Augmentation;
use crate::data::sampler::{CaseSampler, Sampling, SizeBand};
use crate::training::branch::{Batch, BranchRun, LossSums};
use crate::training::config::TrainConfig;
use crate::training::schedule::LrSchedule;

/// What to time.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// One training step of one branch at this batch size.
    TrainStep {
        /// Cases per step.
        batch: usize,
    },
    /// The forward pass of both branches (the ensemble), batch 1.
    Inference,
}

/// A CPU backend of this build, as the benchmark names it.
#[derive(Debug, Clone, Copy)]
pub struct CpuBackend(Compute);

impl CpuBackend {
    /// The CPU backends built in: Flex always, LibTorch with `--features libtorch`.
    pub fn all() -> Vec<CpuBackend> {
        [
            CpuBackend(Compute::Cpu),
            #[cfg(feature = "libtorch")]
            CpuBackend(Compute::Libtorch),
        ]
        .to_vec()
    }

    /// Its name in the benchmark's lines.
    pub fn name(self) -> &'static str {
        match self.0 {
            Compute::Cpu => "burn-flex",
            #[cfg(feature = "libtorch")]
            Compute::Libtorch => "burn-libtorch",
            #[allow(unreachable_patterns, reason = "GPU backends of other builds")]
            _ => "other",
        }
    }

    /// Milliseconds of each of `runs` timed repetitions of `work` (after
    /// `warmup` untimed ones) of the network `config`, on `threads` threads.
    pub fn time(
        self,
        config: &DsanConfig,
        work: Workload,
        warmup: usize,
        runs: usize,
        threads: usize,
    ) -> anyhow::Result<Vec<f64>> {
        #[cfg(feature = "libtorch")]
        crate::compute::libtorch::set_threads(threads);
        let task = Timing {
            config,
            work,
            warmup,
            runs,
        };
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(|| self.0.execute(task)),
            Err(e) => Err(anyhow::anyhow!("a pool of {threads} threads: {e}")),
        }
    }
}

struct Timing<'a> {
    config: &'a DsanConfig,
    work: Workload,
    warmup: usize,
    runs: usize,
}

impl OnBackend for Timing<'_> {
    type Output = Vec<f64>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Vec<f64>> {
        B::seed(&device, 7);
        match self.work {
            Workload::TrainStep { batch } => {
                let mut step = train_step::<B>(self.config, batch, &device)?;
                repeat(self.warmup, self.runs, &mut step)
            }
            Workload::Inference => {
                let model = self.config.init::<B::InnerBackend>(&device);
                let input = Tensor::<B::InnerBackend, 5>::random(
                    dims5(1, self.config.input),
                    Distribution::Default,
                    &device,
                );
                repeat(self.warmup, self.runs, &mut || {
                    let out = model.forward(input.clone());
                    out.probabilities.into_data();
                    Ok(())
                })
            }
        }
    }
}

fn dims5(n: usize, [d, h, w]: [usize; 3]) -> [usize; 5] {
    [n, 1, d, h, w]
}

fn repeat(
    warmup: usize,
    runs: usize,
    work: &mut impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warmup {
        work()?;
    }
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            work()?;
            Ok(started.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

/// One branch with its Adam, and a closure that takes one training step on a
/// fixed random batch (inputs in [0, 1], random labels, masks with a fifth of
/// the feature grid infected).
fn train_step<B: AutodiffBackend>(
    model: &DsanConfig,
    batch: usize,
    device: &B::Device,
) -> anyhow::Result<impl FnMut() -> anyhow::Result<()>> {
    let config = TrainConfig {
        model: model.clone(),
        preprocessing: Preprocessing::default(),
        classes: vec!["CAP".into(), "COVID-19".into()],
        positive: 1,
        epochs: 1,
        batch_size: batch,
        learning_rate: 1e-4,
        lr_schedule: LrSchedule::Constant,
        weight_decay: 0.0,
        attention_lambda: 1.0,
        patience: 1,
        precise_bn: 0,
        seed: 7,
        augmentation: Augmentation::NONE,
    };
    let labels: Vec<usize> = (0..batch).map(|i| i % 2).collect();
    let mut run = BranchRun {
        name: "bench",
        branch: DsanBranch::<B>::new(model, device),
        optim: AdamConfig::new().init::<B, DsanBranch<B>>(),
        sampler: CaseSampler::new(Sampling::Uniform, &labels, &vec![SizeBand::Small; batch])?,
    };
    let [d, h, w] = model.feature_grid();
    let input = Tensor::<B, 5>::random(dims5(batch, model.input), Distribution::Default, device);
    let masks = Tensor::<B, 4>::random([batch, d, h, w], Distribution::Default, device)
        .greater_elem(0.8)
        .float();
    let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch]), device);
    let present = Tensor::<B, 1>::ones([batch], device);
    let loss = DsanLossConfig::new();
    let device = device.clone();
    Ok(move || {
        let shard = Batch {
            input: input.clone(),
            labels: labels.clone(),
            targets: AttentionTargets {
                masks: masks.clone(),
                present: present.clone(),
            },
        };
        let mut sums = LossSums::default();
        run.step(
            vec![shard],
            &device,
            config.learning_rate,
            &config,
            &loss,
            &mut sums,
        )
    })
}
