//! A training run's configuration and its per-epoch log line.

use dsan_ct::model::DsanConfig;
use dsan_ct::weights::Preprocessing;
use serde::{Deserialize, Serialize};

use super::schedule::LrSchedule;
use crate::data::augment::Augmentation;

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
    /// How the learning rate changes over the run.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Adam's weight decay (L2 penalty added to the gradients).
    #[serde(default)]
    pub weight_decay: f64,
    /// `lambda` of `CE + lambda * L_att` (0 turns the attention loss off).
    pub attention_lambda: f64,
    /// Epochs without a better validation AUC before stopping.
    pub patience: usize,
    /// Training cases whose batch statistics replace BatchNorm's running
    /// averages before each validation and in the saved model (precise
    /// BatchNorm); 0 keeps the running averages.
    #[serde(default)]
    pub precise_bn: usize,
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
