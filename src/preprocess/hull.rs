//! Costal concavities: a lesion against the chest wall leaves a bite in the
//! lung's outer (costal) surface, which is convex in a healthy lung. Per
//! slice, the parts of one lung's convex hull that the lung does not fill are
//! put back when they face the ribs (not the mediastinum, whose heart and
//! hilum are normal concavities) and are small against the lung. The hull's
//! chord cuts the lesion short of the curved chest wall, so each accepted
//! part grows, within its angular sector, into the lung's envelope: where
//! the lung reaches in the neighbouring slices, which a lesion of limited
//! height does not touch.

use super::morphology::region_2d;

/// Rules for accepting a hull deficiency.
#[derive(Debug, Clone, Copy)]
pub struct ConcavityRules {
    /// Pixel spacing `[row, column]`, mm.
    pub spacing: [f64; 2],
    /// +1 when the body's midline lies towards larger column indices, -1 otherwise.
    pub medial: f64,
    /// +1 when larger row indices are posterior, -1 when they are anterior.
    pub posterior: f64,
    /// Largest medial component of the unit vector from the lung's centroid to
    /// the deficiency's centroid, for deficiencies behind the centroid.
    pub max_medial_component: f64,
    /// The same for deficiencies in front of it (the heart lies anterior and
    /// medial, so the rule is stricter there).
    pub max_medial_component_anterior: f64,
    /// Largest deficiency area as a share of the lung's area in the slice.
    pub max_area_fraction: f64,
    /// Deficiencies smaller than this (pixels) are filled but not grown
    /// into the envelope: they are the outline's pixel steps, not lesions.
    pub min_grow_pixels: usize,
}

/// Fills the accepted hull deficiencies of the one-lung slice `slice` (`h x
/// w`), grown into `envelope` (the lung in this and the neighbouring slices).
pub fn fill_costal_concavities(
    slice: &mut [u8],
    envelope: &[u8],
    h: usize,
    w: usize,
    rules: &ConcavityRules,
) {
    let mut ends = Vec::new();
    let (mut area, mut sum_j, mut sum_i) = (0usize, 0.0, 0.0);
    for j in 0..h {
        let row = &slice[j * w..(j + 1) * w];
        if let (Some(first), Some(last)) = (
            row.iter().position(|&v| v != 0),
            row.iter().rposition(|&v| v != 0),
        ) {
            ends.push((first as f64, j as f64));
            ends.push((last as f64, j as f64));
        }
        for (i, _) in row.iter().enumerate().filter(|(_, v)| **v != 0) {
            area += 1;
            sum_j += j as f64;
            sum_i += i as f64;
        }
    }
    if area < 3 {
        return;
    }
    let centre = (sum_i / area as f64, sum_j / area as f64);
    let hull = convex_hull(ends);
    let deficiency = rasterize_minus(&hull, slice, h, w);
    let mut visited = vec![false; h * w];
    for seed in 0..h * w {
        if deficiency[seed] == 0 || visited[seed] {
            continue;
        }
        let region = region_2d(h, w, &[seed], &mut visited, |q| deficiency[q] != 0);
        let n = region.len() as f64;
        let ci = region.iter().map(|&p| (p % w) as f64).sum::<f64>() / n;
        let cj = region.iter().map(|&p| (p / w) as f64).sum::<f64>() / n;
        let (dx, dy) = (
            (ci - centre.0) * rules.spacing[1],
            (cj - centre.1) * rules.spacing[0],
        );
        let length = dx.hypot(dy);
        let medial = if length > 0.0 {
            dx * rules.medial / length
        } else {
            1.0
        };
        let max_medial = if dy * rules.posterior >= 0.0 {
            rules.max_medial_component
        } else {
            rules.max_medial_component_anterior
        };
        if medial <= max_medial && n <= rules.max_area_fraction * area as f64 {
            let angle = |p: usize| -> f64 {
                let x = ((p % w) as f64 - centre.0) * rules.spacing[1];
                let y = ((p / w) as f64 - centre.1) * rules.spacing[0];
                let delta = y.atan2(x) - dy.atan2(dx);
                (delta + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                    - std::f64::consts::PI
            };
            let (lo, hi) = region
                .iter()
                .map(|&p| angle(p))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), a| {
                    (lo.min(a), hi.max(a))
                });
            for &p in &region {
                slice[p] = 1;
            }
            if region.len() < rules.min_grow_pixels {
                continue;
            }
            let mut reached = vec![false; h * w];
            let in_sector =
                |q: usize| slice[q] == 0 && envelope[q] != 0 && (lo..=hi).contains(&angle(q));
            for p in region_2d(h, w, &region, &mut reached, in_sector) {
                slice[p] = 1;
            }
        }
    }
}

/// Convex hull (Andrew's monotone chain) of `(x, y)` points, counter-clockwise.
fn convex_hull(mut points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(points.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64)>> = if pass == 0 {
            Box::new(points.iter())
        } else {
            Box::new(points.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// The pixels inside the polygon `hull` that are 0 in `slice`.
fn rasterize_minus(hull: &[(f64, f64)], slice: &[u8], h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; h * w];
    if hull.len() < 3 {
        return out;
    }
    for j in 0..h {
        let y = j as f64;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for e in 0..hull.len() {
            let (a, b) = (hull[e], hull[(e + 1) % hull.len()]);
            if (a.1 - y) * (b.1 - y) > 0.0 {
                continue;
            }
            let xs = if (b.1 - a.1).abs() < 1e-12 {
                [a.0, b.0]
            } else {
                let x = a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1);
                [x, x]
            };
            for x in xs {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if lo > hi {
            continue;
        }
        let first = (lo - 1e-9).ceil().max(0.0) as usize;
        let last = ((hi + 1e-9).floor() as usize).min(w - 1);
        for i in first..=last {
            let p = j * w + i;
            out[p] = u8::from(slice[p] == 0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_with_bite(bite_centre: (f64, f64)) -> (Vec<u8>, usize, usize) {
        let (h, w) = (60, 60);
        let slice = (0..h * w)
            .map(|p| {
                let (y, x) = ((p / w) as f64, (p % w) as f64);
                let disk = (x - 30.0).powi(2) + (y - 30.0).powi(2) <= 400.0;
                let bite = (x - bite_centre.0).powi(2) + (y - bite_centre.1).powi(2) <= 49.0;
                u8::from(disk && !bite)
            })
            .collect();
        (slice, h, w)
    }

    fn rules() -> ConcavityRules {
        ConcavityRules {
            spacing: [1.0, 1.0],
            medial: 1.0,
            posterior: 1.0,
            max_medial_component: 0.5,
            max_medial_component_anterior: 0.2,
            max_area_fraction: 0.5,
            min_grow_pixels: 4,
        }
    }

    #[test]
    fn fills_a_bite_facing_the_ribs_only() {
        // Midline at larger columns: a bite on the small-column side faces the ribs.
        let (disk, _, _) = disk_with_bite((-100.0, -100.0));
        let (mut lateral, h, w) = disk_with_bite((12.0, 30.0));
        fill_costal_concavities(&mut lateral, &disk, h, w, &rules());
        assert_eq!(lateral[30 * w + 14], 1, "lateral bite filled");
        assert_eq!(
            lateral[30 * w + 11],
            1,
            "beyond the hull's chord, up to the envelope"
        );
        assert_eq!(lateral[30 * w + 9], 0, "not beyond the envelope");
        let (mut posterior, _, _) = disk_with_bite((30.0, 48.0));
        fill_costal_concavities(&mut posterior, &disk, h, w, &rules());
        assert_eq!(posterior[46 * w + 30], 1, "posterior bite filled");
        assert_eq!(
            posterior[49 * w + 30],
            1,
            "posterior bite filled up to the envelope"
        );
        let (mut medial, _, _) = disk_with_bite((48.0, 30.0));
        fill_costal_concavities(&mut medial, &disk, h, w, &rules());
        assert_eq!(
            medial[30 * w + 46],
            0,
            "bite facing the mediastinum left alone"
        );
        assert_eq!(medial[30 * w + 55], 0, "nothing outside the hull");
    }

    #[test]
    fn hull_of_a_square_is_its_corners() {
        let hull = convex_hull(vec![
            (0.0, 0.0),
            (2.0, 0.0),
            (1.0, 1.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (1.0, 0.0),
        ]);
        assert_eq!(hull.len(), 4);
    }
}
