//! The stem's convolution (one input channel, a `k^3` kernel, padding `k/2`)
//! as matrix products, for training.
//!
//! burn-flex 0.21 has no weight gradient of `conv3d` of its own: it falls
//! back to Burn's generic one, which runs one more convolution with the
//! whole output gradient as its kernel. For our
//! stem that is seconds a step (docs/upstream/burn-flex-conv3d-weight-backward.md).
//! Written as `W [C_out, k^3] x columns [k^3, positions]`, the forward is a
//! GEMM and so is its weight gradient, and the columns of the input (which
//! needs no gradient: it is the CT) are built once a forward.
//!
//! The columns are built without any strided copy of more than two
//! dimensions (burn-flex copies those element by element):
//! - the padded input is split into its `s_h x s_w` stride phases;
//! - each in-plane tap is then one contiguous run of a phase plane read as
//!   rows of the plane's full width ("wide" rows), so the product computes
//!   a few columns past the output's width, which are dropped at the end;
//! - each output depth's `k^3` columns are `k` consecutive planes' `k^2`
//!   taps, one contiguous window of the column tensor.

use burn::prelude::*;
use burn::tensor::ops::PadMode;

/// `conv3d(x, weight)` with stride `stride`, padding `k/2`, no bias, one
/// input channel: `x [N, 1, D, H, W]`, `weight [C_out, 1, k, k, k]` ->
/// `[N, C_out, D', H', W']`, `D' = (D + 2(k/2) - k) / s_d + 1` and so on.
pub(crate) fn conv3d_one_channel<B: Backend>(
    x: Tensor<B, 5>,
    weight: Tensor<B, 5>,
    stride: [usize; 3],
) -> Tensor<B, 5> {
    let [n, _, depth, height, width] = x.dims();
    let [c_out, _, k, _, _] = weight.dims();
    let [s_d, s_h, s_w] = stride;
    let pad = k / 2;
    let out = |size: usize, s: usize| (size + 2 * pad - k) / s + 1;
    let [out_d, out_h, out_w] = [out(depth, s_d), out(height, s_h), out(width, s_w)];

    // Phase planes are `rows x cols`; rows cover every tap's run (a run
    // starts `kh / s_h` rows down and is `out_h` rows of `cols` long).
    let cols = (width + 2 * pad).div_ceil(s_w);
    let rows = (height + 2 * pad)
        .div_ceil(s_h)
        .max(out_h + (k - 1) / s_h + 1);
    let planes = n * (depth + 2 * pad);
    let padded = x.pad(
        [
            (pad, pad),
            (pad, rows * s_h - height - pad),
            (pad, cols * s_w - width - pad),
        ],
        PadMode::Constant(0.0),
    );
    let split: Tensor<B, 4> = padded.reshape([planes * rows, s_h, cols, s_w]);
    let phase = |row: usize, col: usize| -> Tensor<B, 2> {
        split
            .clone()
            .slice([0..planes * rows, row..row + 1, 0..cols, col..col + 1])
            .reshape([planes, rows * cols])
    };
    let phases: Vec<Vec<Tensor<B, 2>>> = (0..s_h)
        .map(|row| (0..s_w).map(|col| phase(row, col)).collect())
        .collect();

    let run = out_h * cols;
    let taps: Vec<Tensor<B, 3>> = (0..k * k)
        .map(|tap| {
            let (kh, kw) = (tap / k, tap % k);
            let start = (kh / s_h) * cols + kw / s_w;
            phases[kh % s_h][kw % s_w]
                .clone()
                .slice([0..planes, start..start + run])
                .unsqueeze_dim(1)
        })
        .collect();
    let columns: Tensor<B, 3> = Tensor::cat(taps, 1).reshape([n, (depth + 2 * pad) * k * k, run]);

    let kernel: Tensor<B, 3> = weight.reshape([1, c_out, k * k * k]);
    let per_depth: Vec<Tensor<B, 3>> = (0..out_d)
        .map(|z| {
            let first = z * s_d * k * k;
            kernel.clone().matmul(
                columns
                    .clone()
                    .slice([0..n, first..first + k * k * k, 0..run]),
            )
        })
        .collect();
    let wide: Tensor<B, 5> =
        Tensor::stack::<4>(per_depth, 2).reshape([n, c_out, out_d, out_h, cols]);
    wide.slice([0..n, 0..c_out, 0..out_d, 0..out_h, 0..out_w])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

    use burn::backend::Autodiff;
    use burn::tensor::Distribution;
    use burn::tensor::module::conv3d;
    use burn::tensor::ops::ConvOptions;

    use super::*;
    use crate::CpuBackend;

    type AD = Autodiff<CpuBackend>;

    fn values<const D: usize>(t: Tensor<AD, D>) -> Vec<f32> {
        t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
    }

    fn max_abs(values: &[f32]) -> f32 {
        values.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    /// Output and weight gradient equal Burn's `conv3d` (and its generic
    /// weight gradient) for odd and even sizes, the web default's stride and
    /// others (uneven, all 1, all 2), kernels 3, 5 and 7, and batch 2.
    #[test]
    fn matches_burns_conv3d_and_its_weight_gradient() {
        let device = Default::default();
        let cases = [
            ([1, 1, 9, 16, 16], 7, [1, 2, 2]),
            ([2, 1, 8, 13, 11], 7, [1, 2, 2]),
            ([1, 1, 7, 10, 12], 7, [2, 3, 1]),
            ([1, 1, 5, 9, 9], 3, [1, 1, 1]),
            ([2, 1, 6, 12, 10], 5, [2, 2, 2]),
        ];
        for (shape, k, stride) in cases {
            let x = Tensor::<AD, 5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let w =
                Tensor::<AD, 5>::random([3, 1, k, k, k], Distribution::Normal(0.0, 0.2), &device)
                    .require_grad();
            let options = ConvOptions::new(stride, [k / 2; 3], [1; 3], 1);
            let reference = conv3d(x.clone(), w.clone(), None, options);
            let ours = conv3d_one_channel(x, w.clone(), stride);
            assert_eq!(
                ours.dims(),
                reference.dims(),
                "{shape:?} k{k} {stride:?}: shape"
            );

            // A weighting of the outputs, so every output's gradient differs.
            let weights = Tensor::<AD, 5>::random(reference.dims(), Distribution::Default, &device);
            let grad_ref = w
                .grad(&(reference.clone() * weights.clone()).sum().backward())
                .unwrap();
            let grad_ours = w.grad(&(ours.clone() * weights).sum().backward()).unwrap();

            let (a, b) = (values(ours), values(reference));
            let diff: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
            assert!(
                max_abs(&diff) <= 1e-5 * max_abs(&b).max(1.0),
                "{shape:?} k{k} {stride:?}: output"
            );
            let (ga, gb) = (
                grad_ours.into_data().into_vec::<f32>().unwrap(),
                grad_ref.into_data().into_vec::<f32>().unwrap(),
            );
            let diff: Vec<f32> = ga.iter().zip(&gb).map(|(a, b)| a - b).collect();
            assert!(
                max_abs(&diff) <= 1e-4 * max_abs(&gb),
                "{shape:?} k{k} {stride:?}: weight gradient"
            );
        }
    }
}
