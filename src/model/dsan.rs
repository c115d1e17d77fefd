//! The Dual-Sampling Attention Network: two branches of the same architecture
//! (trained with uniform and with size-balanced sampling) whose softmax outputs
//! and normalised attention maps are averaged at inference.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::attention::{class_one_hot, select_class};
use super::branch::{BranchOutput, DsanBranch};
use super::config::DsanConfig;

/// The two-branch model.
#[derive(Module, Debug)]
pub struct Dsan<B: Backend> {
    /// Branch U, trained with uniform sampling over cases.
    pub uniform: DsanBranch<B>,
    /// Branch B, trained with size-balanced sampling (class x infection-size group).
    pub balanced: DsanBranch<B>,
}

/// Inference output of [`Dsan::forward`].
#[derive(Debug, Clone)]
pub struct DsanOutput<B: Backend> {
    /// Output of branch U.
    pub uniform: BranchOutput<B>,
    /// Output of branch B.
    pub balanced: BranchOutput<B>,
    /// Softmax of branch U, `[N, C]`.
    pub uniform_probabilities: Tensor<B, 2>,
    /// Softmax of branch B, `[N, C]`.
    pub balanced_probabilities: Tensor<B, 2>,
    /// Ensemble probabilities: the mean of the two softmax outputs, `[N, C]`.
    pub probabilities: Tensor<B, 2>,
    /// Mean of the two branches' normalised maps for the class the ensemble
    /// predicts, `[N, d, h, w]` on the feature grid.
    pub attention: Tensor<B, 4>,
}

impl DsanConfig {
    /// Builds a randomly initialised two-branch model (Burn's `Config::init`
    /// convention). Call [`DsanConfig::validate`] first for untrusted configs.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Dsan<B> {
        Dsan {
            uniform: DsanBranch::new(self, device),
            balanced: DsanBranch::new(self, device),
        }
    }
}

impl<B: Backend> Dsan<B> {
    /// `[N, 1, D, H, W]` (window-normalised CT on the model grid) -> both
    /// branches' outputs, the ensemble probabilities and the mean attention.
    pub fn forward(&self, x: Tensor<B, 5>) -> DsanOutput<B> {
        let uniform = self.uniform.forward(x.clone());
        let balanced = self.balanced.forward(x);
        let uniform_probabilities = softmax(uniform.logits.clone(), 1); // [N, C]
        let balanced_probabilities = softmax(balanced.logits.clone(), 1); // [N, C]
        let probabilities = (uniform_probabilities.clone() + balanced_probabilities.clone()) / 2.0;
        let [n, classes] = probabilities.dims();
        let predicted = probabilities.clone().argmax(1).reshape([n]); // [N]
        let one_hot = class_one_hot(predicted, classes); // [N, C]
        let attention = (select_class(uniform.attention.clone(), one_hot.clone())
            + select_class(balanced.attention.clone(), one_hot))
            / 2.0; // [N, d, h, w]
        DsanOutput {
            uniform,
            balanced,
            uniform_probabilities,
            balanced_probabilities,
            probabilities,
            attention,
        }
    }
}
