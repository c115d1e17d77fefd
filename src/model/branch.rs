//! One DSAN branch: the 3D ResNet backbone, a linear head on the globally
//! averaged features, and the class activation maps of that head.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::attention::{class_activation_maps, normalize_maps, soft_mask};
use super::config::DsanConfig;
use super::resnet3d::ResNet3d;

/// One network of the pair; both branches share this architecture and differ
/// only in how their training cases were sampled.
#[derive(Module, Debug)]
pub struct DsanBranch<B: Backend> {
    backbone: ResNet3d<B>,
    head: Linear<B>,
}

/// What one branch computes for a batch.
#[derive(Debug, Clone)]
pub struct BranchOutput<B: Backend> {
    /// Class scores before softmax, `[N, C]`.
    pub logits: Tensor<B, 2>,
    /// Class activation maps normalised to `[0, 1]` per sample and class,
    /// `[N, C, d, h, w]` on the feature grid.
    pub attention: Tensor<B, 5>,
}

impl<B: Backend> DsanBranch<B> {
    /// Builds a randomly initialised branch.
    pub fn new(config: &DsanConfig, device: &B::Device) -> Self {
        Self {
            backbone: ResNet3d::new(config, device),
            head: LinearConfig::new(config.feature_channels(), config.num_classes).init(device),
        }
    }

    /// `[N, 1, D, H, W]` (window-normalised CT) -> logits and attention maps.
    pub fn forward(&self, x: Tensor<B, 5>) -> BranchOutput<B> {
        let features = self.backbone.forward(x); // [N, K, d, h, w]
        let [n, k, _, _, _] = features.dims();
        let pooled = features.clone().mean_dims(&[2, 3, 4]).reshape([n, k]); // [N, K]
        let logits = self.head.forward(pooled); // [N, C]
        let cams = class_activation_maps(features, self.head.weight.val()); // [N, C, d, h, w]
        BranchOutput {
            logits,
            attention: normalize_maps(cams),
        }
    }

    /// Sets the momentum of every BatchNorm's running statistics, as
    /// [`ResNet3d::set_norm_momentum`]; training resets it to
    /// [`super::NORM_MOMENTUM`] after re-estimating the statistics.
    pub fn set_norm_momentum(&mut self, momentum: f64) {
        self.backbone.set_norm_momentum(momentum);
    }

    /// The head's weight `[K, C]`, from which the maps are computed.
    pub fn head_weight(&self) -> Tensor<B, 2> {
        self.head.weight.val()
    }

    /// The backbone's last feature map for `x`, `[N, K, d, h, w]`.
    pub fn features(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.backbone.forward(x)
    }
}

impl<B: Backend> BranchOutput<B> {
    /// The soft masks `T(A)` of all classes, `[N, C, d, h, w]`.
    pub fn soft_masks(&self, config: &DsanConfig) -> Tensor<B, 5> {
        soft_mask(
            self.attention.clone(),
            config.attention_omega,
            config.attention_sigma,
        )
    }
}
