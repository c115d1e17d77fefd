//! A deterministic synthetic model input (a crude chest phantom on the model
//! grid), built from integer arithmetic only so that every platform, wasm32
//! included, produces the same bits. Used by forward benchmarks and by the
//! parity checks between backends; real cases come through the pipeline.

use burn::prelude::*;

/// Body, two lungs and a lesion in the right lung, window-normalised to `[0, 1]`,
/// as `[1, 1, D, H, W]` on the grid `input`.
pub fn synthetic_input<B: Backend>(input: [usize; 3], device: &B::Device) -> Tensor<B, 5> {
    let [d, h, w] = input;
    let mut voxels = Vec::with_capacity(d * h * w);
    for z in 0..d {
        for y in 0..h {
            for x in 0..w {
                voxels.push(phantom_value([z, y, x], input));
            }
        }
    }
    Tensor::<B, 1>::from_floats(voxels.as_slice(), device).reshape([1, 1, d, h, w])
}

/// Whether `p` lies inside the axis-aligned ellipsoid (centre and radii in
/// thousandths of the grid, so the test is exact integer arithmetic).
fn inside(p: [usize; 3], grid: [usize; 3], centre: [i64; 3], radii: [i64; 3]) -> bool {
    let mut sum = 0.0_f64;
    for axis in 0..3 {
        let n = grid[axis].max(1) as i64;
        let offset = (p[axis] as i64 * 1000 + 500) / n - centre[axis];
        let q = offset as f64 / radii[axis] as f64;
        sum += q * q;
    }
    sum <= 1.0
}

fn phantom_value(p: [usize; 3], grid: [usize; 3]) -> f32 {
    let lesion = inside(p, grid, [500, 450, 300], [150, 120, 100]);
    let right_lung = inside(p, grid, [500, 480, 310], [420, 300, 170]);
    let left_lung = inside(p, grid, [500, 480, 690], [420, 300, 170]);
    let body = inside(p, grid, [500, 500, 500], [600, 420, 470]);
    // Air 0.0, lung ~ -850 HU -> 0.19, lesion ~ -300 HU -> 0.5, soft tissue 0.6.
    match (lesion && right_lung, right_lung || left_lung, body) {
        (true, _, _) => 0.5,
        (false, true, _) => 0.19 + 0.01 * ((p[0] * 7 + p[1] * 3 + p[2]) % 5) as f32,
        (false, false, true) => 0.6,
        _ => 0.0,
    }
}
