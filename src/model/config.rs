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
}
