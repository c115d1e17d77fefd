//! 3D max-pooling, which Burn 0.21 lacks: the maximum is separable, so a
//! cubic window is an in-plane `max_pool2d` followed by one along the depth.

use burn::prelude::*;
use burn::tensor::module::max_pool2d;

/// Max-pools `[N, C, D, H, W]` with a cubic `kernel`, `stride` and `padding`
/// (padding counts as minus infinity, as in PyTorch's `MaxPool3d`).
///
/// Output: `[N, C, (D + 2p - k) / s + 1, ...]` on each spatial axis.
pub fn max_pool3d<B: Backend>(
    x: Tensor<B, 5>,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Tensor<B, 5> {
    let [n, c, d, h, w] = x.dims();
    // In-plane pass: fold depth into channels.                 [N, C*D, H, W]
    let planes = max_pool2d(
        x.reshape([n, c * d, h, w]),
        [kernel, kernel],
        [stride, stride],
        [padding, padding],
        [1, 1],
        false,
    );
    let [_, _, ho, wo] = planes.dims();
    // Depth pass: treat (H', W') as one axis of width H'*W'.   [N, C, D, H'*W']
    let depth = max_pool2d(
        planes.reshape([n, c, d, ho * wo]),
        [kernel, 1],
        [stride, 1],
        [padding, 0],
        [1, 1],
        false,
    );
    let [_, _, d_out, _] = depth.dims();
    depth.reshape([n, c, d_out, ho, wo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend;

    /// Plain nested-loop reference of a padded cubic max-pool.
    fn reference(x: &[f32], dims: [usize; 3], k: usize, s: usize, p: usize) -> Vec<f32> {
        let out = dims.map(|n| (n + 2 * p - k) / s + 1);
        let mut result = Vec::new();
        for od in 0..out[0] {
            for oh in 0..out[1] {
                for ow in 0..out[2] {
                    let mut best = f32::NEG_INFINITY;
                    for (kd, kh, kw) in (0..k)
                        .flat_map(|a| (0..k).flat_map(move |b| (0..k).map(move |c| (a, b, c))))
                    {
                        let (z, y, xx) = (od * s + kd, oh * s + kh, ow * s + kw);
                        if z < p || y < p || xx < p {
                            continue;
                        }
                        let (z, y, xx) = (z - p, y - p, xx - p);
                        if z < dims[0] && y < dims[1] && xx < dims[2] {
                            best = best.max(x[(z * dims[1] + y) * dims[2] + xx]);
                        }
                    }
                    result.push(best);
                }
            }
        }
        result
    }

    #[test]
    fn matches_a_nested_loop_reference() {
        let device = Default::default();
        let dims = [5, 7, 6];
        let len = dims.iter().product::<usize>();
        // A non-monotonic pattern with negative values, so padding must not win.
        let values: Vec<f32> = (0..len)
            .map(|i| ((i * 37 % 101) as f32 - 80.0) * 0.5)
            .collect();
        let x = Tensor::<CpuBackend, 1>::from_floats(values.as_slice(), &device)
            .reshape([1, 1, dims[0], dims[1], dims[2]]);
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 1)] {
            let got = max_pool3d(x.clone(), k, s, p);
            let expected = reference(&values, dims, k, s, p);
            let out = dims.map(|n| (n + 2 * p - k) / s + 1);
            assert_eq!(got.dims(), [1, 1, out[0], out[1], out[2]]);
            let got: Vec<f32> = got.into_data().to_vec().unwrap();
            assert_eq!(got, expected, "kernel {k} stride {s} padding {p}");
        }
    }
}
