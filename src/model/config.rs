//! Hyper-parameters of the Dual-Sampling Attention Network, with presets and
//! the arithmetic that tells which feature grid a given input produces.

use burn::prelude::*;

/// Architecture of a DSAN model: the 3D ResNet backbone shared by both branches,
/// the classification head and the online attention (CAM) soft mask.
///
/// Every field is recorded in the model card, so inference rebuilds exactly the
/// network that was trained.
#[derive(Config, Debug, PartialEq)]
pub struct DsanConfig {
    /// Model input grid `[D, H, W]` (slices, rows, columns) after preprocessing.
    #[config(default = "[64, 128, 128]")]
    pub input: [usize; 3],
    /// BasicBlocks per stage; `[3, 4, 6, 3]` is ResNet-34.
    #[config(default = "[3, 4, 6, 3]")]
    pub layers: [usize; 4],
    /// Width `w` of the first stage; the stages have `w * [1, 2, 4, 8]` channels.
    #[config(default = 8)]
    pub base_width: usize,
    /// Stride `[d, h, w]` of the 7x7x7 stem convolution.
    #[config(default = "[1, 2, 2]")]
    pub stem_stride: [usize; 3],
    /// Whether a 3x3x3 max-pool with stride 2 follows the stem.
    #[config(default = true)]
    pub stem_pool: bool,
    /// Stride of the first block of each of the four stages.
    #[config(default = "[1, 2, 2, 1]")]
    pub stage_strides: [usize; 4],
    /// Steepness `omega` of the attention soft mask `sigmoid(omega * (A - sigma))`.
    #[config(default = 100.0)]
    pub attention_omega: f64,
    /// Threshold `sigma` of the attention soft mask.
    #[config(default = 0.4)]
    pub attention_sigma: f64,
    /// Number of output classes (CAP = 0, COVID-19 = 1 for the paper's task).
    #[config(default = 2)]
    pub num_classes: usize,
}

/// A configuration that cannot build a working network.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// An input dimension, width, block count or stride is zero.
    #[error("{field} must be positive")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// A field past what any DSAN this software can run needs (a hostile or
    /// mistyped card is refused before anything is allocated for it).
    #[error("{field} is {value}, more than the {max} this software accepts")]
    TooLarge {
        /// The offending field, or `input cells` / `weights` for the totals.
        field: &'static str,
        /// Its value (the product of the grid, the weight count).
        value: u64,
        /// The largest accepted.
        max: u64,
    },
    /// Fewer than two classes.
    #[error("num_classes must be at least 2, got {0}")]
    TooFewClasses(usize),
    /// The soft-mask parameters are outside their meaningful range.
    #[error("attention_omega must be > 0 and attention_sigma in (0, 1), got {omega} and {sigma}")]
    SoftMask {
        /// Configured omega.
        omega: f64,
        /// Configured sigma.
        sigma: f64,
    },
}

/// The largest accepted value of each field (see [`DsanConfig::validate`]).
pub mod limits {
    /// Cells of one axis of the input grid.
    pub const INPUT_AXIS: u64 = 1024;
    /// Cells of the input grid, `D * H * W` (4x the paper scale's 128x256x256).
    pub const INPUT_CELLS: u64 = 128 * 512 * 512;
    /// BasicBlocks in one stage (ResNet-152 has 36).
    pub const BLOCKS_PER_STAGE: u64 = 64;
    /// Width of the first stage.
    pub const BASE_WIDTH: u64 = 256;
    /// Any stride.
    pub const STRIDE: u64 = 8;
    /// Output classes.
    pub const CLASSES: u64 = 64;
    /// Convolution and linear weights of both branches (half a GiB at half precision).
    pub const WEIGHTS: u64 = 1 << 28;
}

impl DsanConfig {
    /// The web default: ResNet-34 at width 8 on a 64x128x128 grid, small enough
    /// for a laptop GPU in a browser (about 1 M parameters per branch).
    pub fn web_default() -> Self {
        Self::new()
    }

    /// A paper-scale network: ResNet-34 at width 64 on a 128x256x256 grid.
    pub fn paper_scale() -> Self {
        Self::new().with_input([128, 256, 256]).with_base_width(64)
    }

    /// A tiny network (seconds on a CPU) for self-checks and tests.
    pub fn tiny() -> Self {
        Self::new()
            .with_input([16, 32, 32])
            .with_layers([1, 1, 1, 1])
            .with_base_width(4)
    }

    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&'static str, &[usize]); 5] = [
            ("input", &self.input),
            ("layers", &self.layers),
            ("base_width", std::slice::from_ref(&self.base_width)),
            ("stem_stride", &self.stem_stride),
            ("stage_strides", &self.stage_strides),
        ];
        for (field, values) in checks {
            if values.contains(&0) {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.num_classes < 2 {
            return Err(ConfigError::TooFewClasses(self.num_classes));
        }
        let maxima: [(&'static str, &[usize], u64); 6] = [
            ("input", &self.input, limits::INPUT_AXIS),
            ("layers", &self.layers, limits::BLOCKS_PER_STAGE),
            (
                "base_width",
                std::slice::from_ref(&self.base_width),
                limits::BASE_WIDTH,
            ),
            ("stem_stride", &self.stem_stride, limits::STRIDE),
            ("stage_strides", &self.stage_strides, limits::STRIDE),
            (
                "num_classes",
                std::slice::from_ref(&self.num_classes),
                limits::CLASSES,
            ),
        ];
        for (field, values, max) in maxima {
            if let Some(&value) = values.iter().find(|&&v| v as u64 > max) {
                return Err(ConfigError::TooLarge {
                    field,
                    value: value as u64,
                    max,
                });
            }
        }
        let totals = [
            (
                "input cells",
                self.input.iter().map(|&n| n as u64).product(),
                limits::INPUT_CELLS,
            ),
            ("weights", self.weight_count(), limits::WEIGHTS),
        ];
        for (field, value, max) in totals {
            if value > max {
                return Err(ConfigError::TooLarge { field, value, max });
            }
        }
        let (omega, sigma) = (self.attention_omega, self.attention_sigma);
        if !(omega > 0.0 && sigma > 0.0 && sigma < 1.0) {
            return Err(ConfigError::SoftMask { omega, sigma });
        }
        Ok(())
    }

    /// Channels of the four stages, `base_width * [1, 2, 4, 8]`.
    pub fn stage_widths(&self) -> [usize; 4] {
        [1, 2, 4, 8].map(|m| m * self.base_width)
    }

    /// Convolution and linear weights (with the head's bias) of both branches,
    /// counted from the fields alone: a lower bound on the tensor elements a
    /// weights file of this architecture holds (BatchNorm adds 4 per channel).
    /// Meaningful for a configuration within [`limits`]' per-field maxima.
    pub fn weight_count(&self) -> u64 {
        let widths = self.stage_widths().map(|w| w as u64);
        let mut count = 7 * 7 * 7 * widths[0];
        let mut in_channels = widths[0];
        for (stage, &blocks) in self.layers.iter().enumerate() {
            let out = widths[stage];
            for block in 0..blocks {
                let stride = if block == 0 {
                    self.stage_strides[stage]
                } else {
                    1
                };
                count += 27 * in_channels * out + 27 * out * out;
                if stride != 1 || in_channels != out {
                    count += in_channels * out;
                }
                in_channels = out;
            }
        }
        count += (in_channels + 1) * self.num_classes as u64;
        2 * count
    }

    /// Channels of the last feature map, the one the attention is computed on.
    pub fn feature_channels(&self) -> usize {
        self.stage_widths()[3]
    }

    /// Grid `[d, h, w]` of the last feature map (the attention resolution).
    ///
    /// Every strided layer pads so that its output has `ceil(n / stride)` cells.
    pub fn feature_grid(&self) -> [usize; 3] {
        let mut grid = self.input;
        let mut apply = |stride: [usize; 3]| {
            for (n, s) in grid.iter_mut().zip(stride) {
                *n = n.div_ceil(s);
            }
        };
        apply(self.stem_stride);
        if self.stem_pool {
            apply([2, 2, 2]);
        }
        for s in self.stage_strides {
            apply([s; 3]);
        }
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_default_keeps_a_sixteenth_of_the_input_in_plane() {
        let config = DsanConfig::web_default();
        assert_eq!(config.feature_grid(), [8, 8, 8]);
        assert!(config.feature_grid()[1] * 16 >= config.input[1]);
    }

    #[test]
    fn odd_inputs_round_up_at_every_stride() {
        let config = DsanConfig::tiny().with_input([9, 33, 17]);
        // stem [1,2,2] -> [9,17,9]; pool -> [5,9,5]; strides 1,2,2,1 -> [2,3,2]
        assert_eq!(config.feature_grid(), [2, 3, 2]);
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert_eq!(
            DsanConfig::tiny().with_base_width(0).validate(),
            Err(ConfigError::Zero {
                field: "base_width"
            })
        );
        assert_eq!(
            DsanConfig::tiny().with_num_classes(1).validate(),
            Err(ConfigError::TooFewClasses(1))
        );
        assert!(
            DsanConfig::tiny()
                .with_attention_sigma(1.5)
                .validate()
                .is_err()
        );
        assert!(DsanConfig::paper_scale().validate().is_ok());
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_built() {
        let too_large = |config: DsanConfig| match config.validate() {
            Err(ConfigError::TooLarge { field, .. }) => field,
            other => panic!("{config:?}: {other:?}"),
        };
        assert_eq!(
            too_large(DsanConfig::tiny().with_input([64, 100_000, 128])),
            "input"
        );
        assert_eq!(
            too_large(DsanConfig::tiny().with_input([1024, 1024, 1024])),
            "input cells"
        );
        assert_eq!(
            too_large(DsanConfig::tiny().with_layers([3, 4, 1_000_000, 3])),
            "layers"
        );
        assert_eq!(
            too_large(DsanConfig::tiny().with_base_width(usize::MAX)),
            "base_width"
        );
        assert_eq!(
            too_large(DsanConfig::tiny().with_num_classes(1 << 40)),
            "num_classes"
        );
        assert_eq!(
            too_large(DsanConfig::tiny().with_base_width(256).with_layers([64; 4])),
            "weights"
        );
    }

    #[test]
    fn the_weight_count_is_that_of_the_built_network() {
        use burn::module::Module;
        let config = DsanConfig::tiny();
        let model = config.init::<crate::CpuBackend>(&Default::default());
        // Widths 4, 8, 16, 32: the stem's BatchNorm, two in the first block,
        // three (with the projection's) in the others; gamma, beta and the
        // running mean and variance each.
        let batch_norm_channels: u64 = 4 + 2 * 4 + 3 * (8 + 16 + 32);
        assert_eq!(
            model.num_params() as u64,
            config.weight_count() + 2 * 4 * batch_norm_channels
        );
        assert!(DsanConfig::web_default().weight_count() > 1_000_000);
    }
}
