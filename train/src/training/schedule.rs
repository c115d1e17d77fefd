//! The learning rate over a run: constant, or Burn's cosine annealing from
//! the configured rate down to zero over all the run's steps.

use anyhow::anyhow;
use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::cosine::{CosineAnnealingLrScheduler, CosineAnnealingLrSchedulerConfig};
use serde::{Deserialize, Serialize};

/// How the learning rate changes over a run (`--lr-schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The configured rate at every step.
    #[default]
    Constant,
    /// Half a cosine from the configured rate to 0 over `epochs` epochs.
    Cosine,
}

/// The learning rate of each step of a run, in order.
pub(super) enum StepRates {
    Constant(f64),
    Cosine(CosineAnnealingLrScheduler),
}

impl StepRates {
    /// The rates of a run of `steps` optimiser steps at `rate`, resuming
    /// after `done` of them.
    pub(super) fn new(
        schedule: LrSchedule,
        rate: f64,
        steps: usize,
        done: usize,
    ) -> anyhow::Result<Self> {
        let mut rates = match schedule {
            LrSchedule::Constant => Self::Constant(rate),
            LrSchedule::Cosine => Self::Cosine(
                CosineAnnealingLrSchedulerConfig::new(rate, steps.max(1))
                    .init()
                    .map_err(|reason| anyhow!("learning rate schedule: {reason}"))?,
            ),
        };
        for _ in 0..done {
            rates.next_rate();
        }
        Ok(rates)
    }

    /// The rate of the next step.
    pub(super) fn next_rate(&mut self) -> f64 {
        match self {
            Self::Constant(rate) => *rate,
            Self::Cosine(scheduler) => scheduler.step(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_falls_from_the_rate_to_zero_and_resumes_where_it_stopped() {
        let mut rates = StepRates::new(LrSchedule::Cosine, 1e-3, 10, 0).unwrap();
        let all: Vec<f64> = (0..11).map(|_| rates.next_rate()).collect();
        assert!((all[0] - 1e-3).abs() < 1e-12, "{all:?}");
        assert!((all[5] - 5e-4).abs() < 1e-12, "{all:?}");
        assert!(all[10].abs() < 1e-12, "{all:?}");
        assert!(all.windows(2).all(|w| w[1] < w[0]), "{all:?}");
        let mut resumed = StepRates::new(LrSchedule::Cosine, 1e-3, 10, 4).unwrap();
        assert_eq!(resumed.next_rate(), all[4]);
        let mut constant = StepRates::new(LrSchedule::Constant, 3e-4, 10, 7).unwrap();
        assert_eq!(constant.next_rate(), 3e-4);
    }
}
