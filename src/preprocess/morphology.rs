//! Binary morphology on slice-major `u8` grids (0 outside, 1 inside): 3D
//! connected components, 2D border connectivity (hole filling, outside air)
//! and a closing with a ball given in millimetres.

use super::edt::squared_distance;

/// 3D connected components of the voxels equal to 1 (6-connectivity).
/// Returns one label per voxel (0 for background, components numbered from
/// 1) and the voxel count of each component (index 0 unused).
pub fn label_components(data: &[u8], dims: [usize; 3]) -> (Vec<u32>, Vec<usize>) {
    let [d, h, w] = dims;
    let mut labels = vec![0u32; data.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for seed in 0..data.len() {
        if data[seed] == 0 || labels[seed] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0usize;
        labels[seed] = label;
        stack.push(seed);
        while let Some(x) = stack.pop() {
            size += 1;
            let (k, j, i) = (x / (h * w), (x / w) % h, x % w);
            let mut visit = |y: usize| {
                if data[y] != 0 && labels[y] == 0 {
                    labels[y] = label;
                    stack.push(y);
                }
            };
            if i > 0 {
                visit(x - 1);
            }
            if i + 1 < w {
                visit(x + 1);
            }
            if j > 0 {
                visit(x - w);
            }
            if j + 1 < h {
                visit(x + w);
            }
            if k > 0 {
                visit(x - h * w);
            }
            if k + 1 < d {
                visit(x + h * w);
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// Marks, slice by slice, the voxels connected (4-connectivity within the
/// slice) to the slice's border through voxels where `passable` is 1.
pub fn border_connected_2d(passable: &[u8], dims: [usize; 3]) -> Vec<u8> {
    let [_, h, w] = dims;
    let plane = h * w;
    let mut reached = vec![0u8; passable.len()];
    let mut visited = vec![false; plane];
    for (slice, out) in passable.chunks(plane).zip(reached.chunks_mut(plane)) {
        visited.fill(false);
        let mut seeds: Vec<usize> = (0..w)
            .flat_map(|i| [i, (h - 1) * w + i])
            .chain((0..h).flat_map(|j| [j * w, j * w + w - 1]))
            .filter(|&p| slice[p] != 0)
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        for p in region_2d(h, w, &seeds, &mut visited, |q| slice[q] != 0) {
            out[p] = 1;
        }
    }
    reached
}

/// The pixels of an `h x w` slice reached from `seeds` through 4-neighbours
/// that `accept` lets in and that are not yet `visited` (seeds included, all
/// marked visited).
pub fn region_2d(
    h: usize,
    w: usize,
    seeds: &[usize],
    visited: &mut [bool],
    mut accept: impl FnMut(usize) -> bool,
) -> Vec<usize> {
    let mut region = seeds.to_vec();
    for &seed in seeds {
        visited[seed] = true;
    }
    let mut next = 0;
    while next < region.len() {
        let p = region[next];
        next += 1;
        let (j, i) = (p / w, p % w);
        let neighbours = [
            (i > 0).then(|| p - 1),
            (i + 1 < w).then(|| p + 1),
            (j > 0).then(|| p - w),
            (j + 1 < h).then(|| p + w),
        ];
        for q in neighbours.into_iter().flatten() {
            if !visited[q] && accept(q) {
                visited[q] = true;
                region.push(q);
            }
        }
    }
    region
}

/// Fills, slice by slice, every background region not connected to the
/// slice's border.
pub fn fill_holes_2d(data: &mut [u8], dims: [usize; 3]) {
    let background: Vec<u8> = data.iter().map(|&v| u8::from(v == 0)).collect();
    let outside = border_connected_2d(&background, dims);
    for (v, o) in data.iter_mut().zip(outside) {
        *v = u8::from(*v != 0 || o == 0);
    }
}

/// Morphological closing (dilation then erosion) with a ball of `radius_mm`
/// on the grid `dims` with `spacing` (mm). The grid should leave `radius_mm`
/// of background around the mask; at the grid's edge the erosion treats the
/// world beyond as inside.
pub fn close_ball(data: &[u8], dims: [usize; 3], spacing: [f64; 3], radius_mm: f64) -> Vec<u8> {
    let r2 = (radius_mm * radius_mm) as f32;
    let dilated: Vec<u8> = squared_distance(data, dims, spacing, 1)
        .into_iter()
        .map(|d2| u8::from(d2 <= r2))
        .collect();
    squared_distance(&dilated, dims, spacing, 0)
        .into_iter()
        .map(|d2| u8::from(d2 > r2))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(dims: [usize; 3], inside: impl Fn(usize, usize, usize) -> bool) -> Vec<u8> {
        let [d, h, w] = dims;
        (0..d * h * w)
            .map(|x| u8::from(inside(x / (h * w), (x / w) % h, x % w)))
            .collect()
    }

    #[test]
    fn labels_separate_components_and_counts_them() {
        let dims = [3, 4, 5];
        let data = grid(dims, |_, j, i| (i == 0) || (i >= 3 && j >= 2));
        let (labels, sizes) = label_components(&data, dims);
        assert_eq!(sizes.len(), 3);
        assert_eq!(sizes[1], 12);
        assert_eq!(sizes[2], 12);
        assert_ne!(labels[0], labels[(2 * 4 + 3) * 5 + 4]);
    }

    #[test]
    fn fills_enclosed_holes_but_not_open_bays() {
        let dims = [1, 7, 7];
        // A ring with a hole at its centre, and a bay open to the border.
        let mut data = grid(dims, |_, j, i| {
            let ring = (1..=5).contains(&j) && (1..=5).contains(&i) && !(j == 3 && i == 3);
            ring && !(j == 3 && i >= 5)
        });
        fill_holes_2d(&mut data, dims);
        assert_eq!(data[3 * 7 + 3], 1, "enclosed hole filled");
        assert_eq!(data[3 * 7 + 5], 0, "bay open to the border stays empty");
    }

    #[test]
    fn closing_fills_a_gap_narrower_than_the_ball_only() {
        let dims = [1, 40, 60];
        let spacing = [1.0, 1.0, 1.0];
        // Two blocks separated by a 4 mm gap.
        let data = grid(dims, |_, j, i| {
            (10..30).contains(&j) && (10..50).contains(&i) && !(28..32).contains(&i)
        });
        let closed = close_ball(&data, dims, spacing, 3.0);
        assert_eq!(closed[20 * 60 + 30], 1, "gap of 4 mm closed by a 3 mm ball");
        let open = close_ball(&data, dims, spacing, 1.5);
        assert_eq!(
            open[20 * 60 + 30],
            0,
            "gap of 4 mm stays with a 1.5 mm ball"
        );
        assert_eq!(closed[5 * 60 + 30], 0, "nothing grows outside");
    }
}
