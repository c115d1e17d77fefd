//! Exact squared Euclidean distance transform on an anisotropic grid
//! (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions",
//! Theory of Computing 8, 2012): one lower-envelope-of-parabolas pass per axis.

/// Squared distance, in mm², from every voxel to the nearest voxel whose
/// `data` equals `feature`; `f32::INFINITY` where there is none. `data` is
/// slice-major on `dims = [slices, rows, columns]` with `spacing` in mm.
pub fn squared_distance(data: &[u8], dims: [usize; 3], spacing: [f64; 3], feature: u8) -> Vec<f32> {
    let [d, h, w] = dims;
    let mut dist: Vec<f32> = data
        .iter()
        .map(|&v| if v == feature { 0.0 } else { f32::INFINITY })
        .collect();
    let longest = d.max(h).max(w);
    let mut scratch = Scratch::new(longest);
    let strides = [h * w, w, 1];
    // Columns first (contiguous), then rows, then slices.
    for axis in [2, 1, 0] {
        let n = dims[axis];
        let step = strides[axis];
        let s = spacing[axis] as f32;
        let others: Vec<usize> = (0..3).filter(|&a| a != axis).collect();
        for a in 0..dims[others[0]] {
            for b in 0..dims[others[1]] {
                let start = a * strides[others[0]] + b * strides[others[1]];
                for q in 0..n {
                    scratch.line[q] = dist[start + q * step];
                }
                scratch.transform(n, s);
                for q in 0..n {
                    dist[start + q * step] = scratch.out[q];
                }
            }
        }
    }
    dist
}

/// Buffers for the 1D transform of one line.
struct Scratch {
    line: Vec<f32>,
    out: Vec<f32>,
    /// Grid positions of the parabolas in the lower envelope.
    vertex: Vec<usize>,
    /// Boundaries between envelope parabolas (in grid units).
    boundary: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            line: vec![0.0; n],
            out: vec![0.0; n],
            vertex: vec![0; n],
            boundary: vec![0.0; n + 1],
        }
    }

    /// `out[p] = min_q (s (p - q))^2 + line[q]` over the first `n` samples.
    fn transform(&mut self, n: usize, s: f32) {
        let s2 = s * s;
        let f = &self.line;
        let mut count = 0usize;
        for q in 0..n {
            if !f[q].is_finite() {
                continue;
            }
            loop {
                if count == 0 {
                    self.vertex[0] = q;
                    self.boundary[0] = f32::NEG_INFINITY;
                    self.boundary[1] = f32::INFINITY;
                    count = 1;
                    break;
                }
                let v = self.vertex[count - 1];
                let (qf, vf) = (q as f32, v as f32);
                let cross =
                    ((f[q] + s2 * qf * qf) - (f[v] + s2 * vf * vf)) / (2.0 * s2 * (qf - vf));
                if cross <= self.boundary[count - 1] {
                    count -= 1;
                    continue;
                }
                self.vertex[count] = q;
                self.boundary[count] = cross;
                self.boundary[count + 1] = f32::INFINITY;
                count += 1;
                break;
            }
        }
        if count == 0 {
            self.out[..n].fill(f32::INFINITY);
            return;
        }
        let mut e = 0usize;
        for p in 0..n {
            let pf = p as f32;
            while self.boundary[e + 1] < pf {
                e += 1;
            }
            let v = self.vertex[e];
            let dv = s * (pf - v as f32);
            self.out[p] = dv * dv + f[v];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the minimum over all feature voxels.
    fn brute(data: &[u8], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f32> {
        let [d, h, w] = dims;
        let features: Vec<[usize; 3]> = (0..d * h * w)
            .filter(|&x| data[x] == 1)
            .map(|x| [x / (h * w), (x / w) % h, x % w])
            .collect();
        (0..d * h * w)
            .map(|x| {
                let p = [x / (h * w), (x / w) % h, x % w];
                features
                    .iter()
                    .map(|f| {
                        (0..3)
                            .map(|a| ((p[a] as f64 - f[a] as f64) * spacing[a]).powi(2))
                            .sum::<f64>() as f32
                    })
                    .fold(f32::INFINITY, f32::min)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_an_anisotropic_grid() {
        let dims = [5, 7, 6];
        let spacing = [2.5, 0.8, 1.1];
        // A deterministic scatter of features.
        let data: Vec<u8> = (0..dims.iter().product::<usize>())
            .map(|x| u8::from((x * 7919) % 23 == 0))
            .collect();
        let fast = squared_distance(&data, dims, spacing, 1);
        let slow = brute(&data, dims, spacing);
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() <= 1e-3 * b.max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn no_feature_gives_infinity() {
        let d = squared_distance(&[0; 8], [2, 2, 2], [1.0; 3], 1);
        assert!(d.iter().all(|v| v.is_infinite()));
    }
}
