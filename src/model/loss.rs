//! The training objective of one branch: cross-entropy plus `lambda` times the
//! attention loss `mean((T(A_y) - M)^2)` on the cases that have an infection mask.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use super::attention::{class_one_hot, select_class};
use super::branch::BranchOutput;
use super::config::DsanConfig;

/// Weight of the attention loss, `L = CE + lambda * L_att`.
#[derive(Config, Debug)]
pub struct DsanLossConfig {
    /// `lambda`; the paper's specification uses 1.
    #[config(default = 1.0)]
    pub attention_lambda: f64,
}

/// Infection masks for a batch, downsampled to the feature grid.
#[derive(Debug, Clone)]
pub struct AttentionTargets<B: Backend> {
    /// Infected fraction of each feature cell, `[N, d, h, w]` in `[0, 1]`.
    pub masks: Tensor<B, 4>,
    /// 1 where the case has a mask, 0 where it has none (its row of `masks`
    /// is then ignored), `[N]`.
    pub present: Tensor<B, 1>,
}

/// The loss terms of one batch (scalars as `[1]` tensors).
#[derive(Debug, Clone)]
pub struct DsanLoss<B: Backend> {
    /// `CE + lambda * L_att`, the value to minimise.
    pub total: Tensor<B, 1>,
    /// Cross-entropy of the logits against the labels.
    pub cross_entropy: Tensor<B, 1>,
    /// Attention loss averaged over the cases with a mask (0 when none has one).
    pub attention: Tensor<B, 1>,
}

impl DsanLossConfig {
    /// Computes the loss of one branch's output against `labels` (`[N]` class
    /// indices) and the infection masks.
    pub fn loss<B: Backend>(
        &self,
        model: &DsanConfig,
        output: &BranchOutput<B>,
        labels: Tensor<B, 1, Int>,
        targets: &AttentionTargets<B>,
    ) -> DsanLoss<B> {
        let device = output.logits.device();
        let [n, classes] = output.logits.dims();
        let cross_entropy = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(output.logits.clone(), labels.clone());
        let one_hot = class_one_hot(labels.clone(), classes); // [N, C]
        let soft = select_class(output.soft_masks(model), one_hot); // [N, d, h, w]
        let per_case = (soft - targets.masks.clone())
            .powi_scalar(2)
            .reshape([n as i32, -1])
            .mean_dim(1)
            .reshape([n]); // [N]
        let count = targets.present.clone().sum().clamp_min(1.0);
        let attention = (per_case * targets.present.clone()).sum() / count;
        let total = cross_entropy.clone() + attention.clone() * self.attention_lambda;
        DsanLoss {
            total,
            cross_entropy,
            attention,
        }
    }
}
