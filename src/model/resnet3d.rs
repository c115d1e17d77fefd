//! The 3D ResNet backbone: a 7x7x7 stem, an optional max-pool and four stages
//! of BasicBlocks (two 3x3x3 convolutions with BatchNorm and a residual path).

use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig3d, Relu};
use burn::prelude::*;

use super::batch_norm::batch_norm_train;
use super::config::DsanConfig;
use super::pool3d::max_pool3d;
use super::stem_gemm::conv3d_one_channel;

/// The momentum of BatchNorm's running statistics during training (Burn's
/// and PyTorch's default).
pub const NORM_MOMENTUM: f64 = 0.1;

/// Whether the stem runs as GEMMs ([`conv3d_one_channel`]) on this backend:
/// only under autodiff on Flex, where it makes a web-default training step at
/// batch 1 about 2x faster (`cargo bench -p dsan-train --bench train_step`,
/// 2026-12-03: 3.65 s -> 1.51 s). LibTorch's step was no faster with it (b1
/// 687 against 677 ms, b2 849 against 731 ms), and inference keeps each
/// backend's own convolution.
fn stem_as_gemm<B: Backend>(device: &B::Device) -> bool {
    B::name(device) == "autodiff<flex>"
}

/// Convolution followed by BatchNorm (no bias: BatchNorm's shift replaces it).
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    conv: Conv3d<B>,
    norm: BatchNorm<B>,
}

impl<B: Backend> ConvBn<B> {
    fn new(channels: [usize; 2], kernel: usize, stride: [usize; 3], device: &B::Device) -> Self {
        let pad = kernel / 2;
        let conv = Conv3dConfig::new(channels, [kernel; 3])
            .with_stride(stride)
            .with_padding(PaddingConfig3d::Explicit(pad, pad, pad))
            .with_bias(false)
            .init(device);
        let norm = BatchNormConfig::new(channels[1])
            .with_momentum(NORM_MOMENTUM)
            .init(device);
        Self { conv, norm }
    }

    /// `[N, C_in, D, H, W]` -> `[N, C_out, ceil(D/s), ceil(H/s), ceil(W/s)]`.
    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.normalize(self.conv.forward(x))
    }

    /// BatchNorm: with the batch's statistics under autodiff
    /// ([`batch_norm_train`], Burn's training forward in a layout CPU
    /// backends run fast), with the running statistics otherwise (Burn's).
    fn normalize(&self, y: Tensor<B, 5>) -> Tensor<B, 5> {
        if B::ad_enabled(&y.device()) {
            batch_norm_train(&self.norm, y)
        } else {
            self.norm.forward(y)
        }
    }

    /// [`Self::forward`] for the stem (one input channel). Training on Flex
    /// runs the convolution as matrix products, whose weight gradient is a
    /// GEMM too (see [`conv3d_one_channel`]); inference and the other
    /// backends keep the backend's own convolution. Both compute the same
    /// function.
    fn forward_stem(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let y = if stem_as_gemm::<B>(&x.device()) {
            conv3d_one_channel(x, self.conv.weight.val(), self.conv.stride)
        } else {
            self.conv.forward(x)
        };
        self.normalize(y)
    }

    fn set_norm_momentum(&mut self, momentum: f64) {
        self.norm.momentum = momentum;
    }
}

/// A ResNet BasicBlock: `relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    conv1: ConvBn<B>,
    conv2: ConvBn<B>,
    /// 1x1x1 projection when the block changes width or resolution.
    shortcut: Option<ConvBn<B>>,
    relu: Relu,
}

impl<B: Backend> BasicBlock<B> {
    fn new(channels: [usize; 2], stride: usize, device: &B::Device) -> Self {
        let shortcut = (stride != 1 || channels[0] != channels[1])
            .then(|| ConvBn::new(channels, 1, [stride; 3], device));
        Self {
            conv1: ConvBn::new(channels, 3, [stride; 3], device),
            conv2: ConvBn::new([channels[1]; 2], 3, [1; 3], device),
            shortcut,
            relu: Relu::new(),
        }
    }

    /// `[N, C_in, D, H, W]` -> `[N, C_out, ceil(D/s), ceil(H/s), ceil(W/s)]`.
    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let identity = match &self.shortcut {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.relu.forward(self.conv1.forward(x));
        let y = self.conv2.forward(y);
        self.relu.forward(y + identity)
    }

    fn set_norm_momentum(&mut self, momentum: f64) {
        self.conv1.set_norm_momentum(momentum);
        self.conv2.set_norm_momentum(momentum);
        if let Some(projection) = &mut self.shortcut {
            projection.set_norm_momentum(momentum);
        }
    }
}

/// The backbone: stem, optional pool and four stages of BasicBlocks.
#[derive(Module, Debug)]
pub struct ResNet3d<B: Backend> {
    stem: ConvBn<B>,
    stem_pool: bool,
    stages: Vec<Vec<BasicBlock<B>>>,
    relu: Relu,
}

impl<B: Backend> ResNet3d<B> {
    /// Builds the backbone described by `config` (randomly initialised).
    pub fn new(config: &DsanConfig, device: &B::Device) -> Self {
        let widths = config.stage_widths();
        let stem = ConvBn::new([1, widths[0]], 7, config.stem_stride, device);
        let mut in_channels = widths[0];
        let stages = (0..4)
            .map(|stage| {
                (0..config.layers[stage])
                    .map(|block| {
                        let stride = if block == 0 {
                            config.stage_strides[stage]
                        } else {
                            1
                        };
                        let layer = BasicBlock::new([in_channels, widths[stage]], stride, device);
                        in_channels = widths[stage];
                        layer
                    })
                    .collect()
            })
            .collect();
        Self {
            stem,
            stem_pool: config.stem_pool,
            stages,
            relu: Relu::new(),
        }
    }

    /// `[N, 1, D, H, W]` -> last feature map `[N, 8w, d, h, w]`
    /// (see [`DsanConfig::feature_grid`]).
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let mut x = self.relu.forward(self.stem.forward_stem(x)); // [N, w, D/s, H/s, W/s]
        if self.stem_pool {
            x = max_pool3d(x, 3, 2, 1); // [N, w, D/2s, H/2s, W/2s]
        }
        for block in self.stages.iter().flatten() {
            x = block.forward(x);
        }
        x
    }

    /// Sets the momentum of every BatchNorm's running statistics (the weight
    /// of the newest batch; 1 keeps only that batch's statistics).
    pub fn set_norm_momentum(&mut self, momentum: f64) {
        self.stem.set_norm_momentum(momentum);
        for block in self.stages.iter_mut().flatten() {
            block.set_norm_momentum(momentum);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;

    use super::*;
    use crate::CpuBackend;

    #[test]
    fn the_stem_runs_as_gemms_only_when_training_on_flex() {
        let device = Default::default();
        assert!(stem_as_gemm::<Autodiff<CpuBackend>>(&device));
        assert!(!stem_as_gemm::<CpuBackend>(&device));
    }
}
