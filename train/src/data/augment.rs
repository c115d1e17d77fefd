//! Training augmentation on the model grid, as ../shared/DESIGN.md lists it:
//! a small random shift of the lung box, a small in-plane rotation and an
//! intensity jitter. The infection target moves with the input.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Ranges of the random transforms (all off = identity).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Largest shift along each axis, as a fraction of the grid.
    pub max_shift: f64,
    /// Largest in-plane rotation, degrees.
    pub max_rotation_deg: f64,
    /// Largest relative change of contrast (`v * (1 + s)`).
    pub contrast: f64,
    /// Largest brightness offset (`v + b`, in window units).
    pub brightness: f64,
}

impl Default for Augmentation {
    /// Shift up to 5% of the box, rotation up to 10 degrees, contrast 10%, brightness 0.05.
    fn default() -> Self {
        Self {
            max_shift: 0.05,
            max_rotation_deg: 10.0,
            contrast: 0.1,
            brightness: 0.05,
        }
    }
}

impl Augmentation {
    /// No augmentation (evaluation).
    pub const NONE: Self = Self {
        max_shift: 0.0,
        max_rotation_deg: 0.0,
        contrast: 0.0,
        brightness: 0.0,
    };

    /// A randomly transformed copy of `input` (and `target`, on the same
    /// `grid`): resampled (trilinear in-plane, linear along slices) at the
    /// shifted and rotated positions, edges clamped, then contrast and
    /// brightness jitter on the input only, clamped to [0, 1].
    pub fn apply(
        &self,
        input: &[f32],
        target: Option<&[f32]>,
        grid: [usize; 3],
        rng: &mut impl Rng,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let mut uniform = |range: f64| {
            if range > 0.0 {
                rng.random_range(-range..=range)
            } else {
                0.0
            }
        };
        let shift: [f64; 3] = std::array::from_fn(|a| uniform(self.max_shift) * grid[a] as f64);
        let angle = uniform(self.max_rotation_deg).to_radians();
        let contrast = 1.0 + uniform(self.contrast) as f32;
        let brightness = uniform(self.brightness) as f32;
        let warp = Warp::new(grid, shift, angle);
        let moved = warp.apply(input);
        let moved = moved
            .into_iter()
            .map(|v| (v * contrast + brightness).clamp(0.0, 1.0))
            .collect();
        (moved, target.map(|t| warp.apply(t)))
    }
}

/// A shift plus a rotation about the slice axis through the grid's centre.
struct Warp {
    grid: [usize; 3],
    shift: [f64; 3],
    cos: f64,
    sin: f64,
}

impl Warp {
    fn new(grid: [usize; 3], shift: [f64; 3], angle: f64) -> Self {
        Self {
            grid,
            shift,
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }

    fn apply(&self, values: &[f32]) -> Vec<f32> {
        let [d, h, w] = self.grid;
        let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
        let mut out = Vec::with_capacity(values.len());
        let clamp = |c: f64, n: usize| c.clamp(0.0, (n - 1) as f64);
        for k in 0..d {
            let sk = clamp(k as f64 - self.shift[0], d);
            let (k0, tk) = (sk.floor() as usize, (sk - sk.floor()) as f32);
            let k1 = (k0 + 1).min(d - 1);
            for j in 0..h {
                for i in 0..w {
                    let (y, x) = (j as f64 - cy - self.shift[1], i as f64 - cx - self.shift[2]);
                    let sy = clamp(cy + self.cos * y + self.sin * x, h);
                    let sx = clamp(cx - self.sin * y + self.cos * x, w);
                    let (j0, i0) = (sy.floor() as usize, sx.floor() as usize);
                    let (j1, i1) = ((j0 + 1).min(h - 1), (i0 + 1).min(w - 1));
                    let (tj, ti) = ((sy - j0 as f64) as f32, (sx - i0 as f64) as f32);
                    let plane = |k: usize| {
                        let at = |j: usize, i: usize| values[(k * h + j) * w + i];
                        let top = at(j0, i0) * (1.0 - ti) + at(j0, i1) * ti;
                        let bottom = at(j1, i0) * (1.0 - ti) + at(j1, i1) * ti;
                        top * (1.0 - tj) + bottom * tj
                    };
                    out.push(plane(k0) * (1.0 - tk) + plane(k1) * tk);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn blob(grid: [usize; 3], centre: [f64; 3]) -> Vec<f32> {
        let [d, h, w] = grid;
        (0..d * h * w)
            .map(|x| {
                let p = [(x / (h * w)) as f64, ((x / w) % h) as f64, (x % w) as f64];
                let r2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
                f32::from(u8::from(r2 < 9.0))
            })
            .collect()
    }

    fn centroid(values: &[f32], grid: [usize; 3]) -> [f64; 3] {
        let [_, h, w] = grid;
        let total: f64 = values.iter().map(|&v| f64::from(v)).sum();
        std::array::from_fn(|a| {
            values
                .iter()
                .enumerate()
                .map(|(x, &v)| {
                    let p = [x / (h * w), (x / w) % h, x % w];
                    p[a] as f64 * f64::from(v)
                })
                .sum::<f64>()
                / total
        })
    }

    #[test]
    fn none_is_the_identity() {
        let grid = [6, 10, 12];
        let input = blob(grid, [3.0, 4.0, 5.0]);
        let mut rng = StdRng::seed_from_u64(1);
        let (out, target) = Augmentation::NONE.apply(&input, Some(&input), grid, &mut rng);
        assert_eq!(out, input);
        assert_eq!(target, Some(input));
    }

    #[test]
    fn the_target_moves_with_the_input() {
        let grid = [16, 32, 32];
        let input = blob(grid, [8.0, 16.0, 10.0]);
        let augmentation = Augmentation {
            contrast: 0.0,
            brightness: 0.0,
            max_shift: 0.1,
            max_rotation_deg: 15.0,
        };
        for seed in 0..5 {
            let mut rng = StdRng::seed_from_u64(seed);
            let (out, target) = augmentation.apply(&input, Some(&input), grid, &mut rng);
            let target = target.unwrap();
            assert_eq!(out, target);
            let (before, after) = (centroid(&input, grid), centroid(&out, grid));
            let moved: f64 = (0..3)
                .map(|a| (before[a] - after[a]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(moved > 0.1 && moved < 6.0, "seed {seed}: moved {moved}");
        }
    }
}
