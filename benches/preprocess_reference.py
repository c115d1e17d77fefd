"""Reference implementation of DSAN-CT's preprocessing in Python, for the
`preprocess` benchmark: the same steps as `src/preprocess/` (block-mean
working grid, outside air, lung candidates, 3D components, airway tracking,
per-lung hole filling, ball closing by distance transform, costal concavity
filling, nearest upsampling, crop and trilinear resampling), written with
numpy, scipy.ndimage and scikit-image.

Usage: preprocess_reference.py VOLUME.f32 D H W SD SH SW RUNS
Prints `median_s <seconds>` and `lung_ml <mL>`.
"""

import sys
import time

import numpy as np
from scipy import ndimage
from skimage.measure import block_reduce
from skimage.morphology import convex_hull_image

WORK_MM = 2.0
BODY_HU = -500.0
LUNG_HU = -400.0
AIRWAY_MM2 = 700.0
CLOSING_MM = 20.0
GRID = (64, 128, 128)
MARGIN_MM = 10.0


def segment(vol, spacing):
    factors = tuple(max(1, round(WORK_MM / s)) for s in spacing)
    work = block_reduce(vol, factors, np.mean)
    wsp = tuple(s * f for s, f in zip(spacing, factors))
    voxel_ml = np.prod(wsp) / 1000.0
    air = work < BODY_HU
    outside = np.zeros_like(air)
    for k in range(air.shape[0]):
        labels, _ = ndimage.label(air[k])
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        outside[k] = np.isin(labels, border[border > 0])
    body = ~outside & (work >= BODY_HU)
    midline = np.nonzero(body)[2].mean()
    cand = (work < LUNG_HU) & ~outside
    labels, n = ndimage.label(cand)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    first = sizes.argmax()
    cols = ndimage.mean(np.indices(labels.shape)[2], labels, np.arange(n + 1))
    side = np.sign(cols - midline)
    others = [l for l in range(1, n + 1) if l != first and side[l] != side[first]]
    keep = [first]
    if others:
        second = max(others, key=lambda l: sizes[l])
        if sizes[second] >= 0.02 * sizes[first]:
            keep.append(second)
    lungs = np.isin(labels, keep)
    # Airways: follow small cross-sections from the top slice down.
    max_area = AIRWAY_MM2 / (wsp[1] * wsp[2])
    tracked = None
    for k in range(lungs.shape[0] - 1, -1, -1):
        if tracked is None and not lungs[k].any():
            continue
        lab, m = ndimage.label(lungs[k])
        areas = np.bincount(lab.ravel())
        if tracked is None:
            ids = [i for i in range(1, m + 1) if areas[i] <= max_area]
        else:
            ids = [i for i in np.unique(lab[tracked]) if i > 0 and areas[i] <= max_area]
        if not ids:
            break
        tracked = np.isin(lab, ids)
        lungs[k][tracked] = False
    # Per lung: fill holes, close with a ball, fill holes, costal hull.
    out = np.zeros_like(lungs)
    cols = np.indices(lungs.shape[1:])[1]
    for right in (True, False):
        part = lungs & ((cols < midline) == right)[None]
        if not part.any():
            continue
        pad = [int(np.ceil(CLOSING_MM / s)) + 1 for s in wsp]
        part = np.pad(part, [(p, p) for p in pad], mode="edge")
        for k in range(part.shape[0]):
            part[k] = ndimage.binary_fill_holes(part[k])
        dilated = ndimage.distance_transform_edt(~part, sampling=wsp) <= CLOSING_MM
        closed = ndimage.distance_transform_edt(dilated, sampling=wsp) > CLOSING_MM
        for k in range(closed.shape[0]):
            closed[k] = ndimage.binary_fill_holes(closed[k])
            if closed[k].sum() > 2:
                hull = convex_hull_image(closed[k])
                lab, m = ndimage.label(hull & ~closed[k])
                for i in range(1, m + 1):
                    if (lab == i).sum() <= 0.3 * closed[k].sum():
                        closed[k][lab == i] = True
        closed = closed[pad[0]:-pad[0], pad[1]:-pad[1], pad[2]:-pad[2]]
        out |= closed
    out &= ~outside
    fine = out.repeat(factors[0], 0).repeat(factors[1], 1).repeat(factors[2], 2)
    fine = fine[: vol.shape[0], : vol.shape[1], : vol.shape[2]]
    return fine


def prepare(vol, mask, spacing):
    idx = np.nonzero(mask)
    lo = [max(0, int(i.min()) - int(np.ceil(MARGIN_MM / s))) for i, s in zip(idx, spacing)]
    hi = [min(n - 1, int(i.max()) + int(np.ceil(MARGIN_MM / s))) for i, n, s in zip(idx, vol.shape, spacing)]
    axes = [lo[a] + (np.arange(GRID[a]) + 0.5) * (hi[a] - lo[a] + 1) / GRID[a] - 0.5 for a in range(3)]
    coords = np.meshgrid(*axes, indexing="ij")
    hu = ndimage.map_coordinates(vol, coords, order=1, mode="nearest")
    return np.clip((hu + 1200.0) / 1800.0, 0.0, 1.0)


def main():
    path, d, h, w, sd, sh, sw, runs = sys.argv[1:]
    shape = (int(d), int(h), int(w))
    spacing = (float(sd), float(sh), float(sw))
    vol = np.fromfile(path, dtype="<f4").reshape(shape)
    times = []
    for _ in range(int(runs)):
        start = time.perf_counter()
        mask = segment(vol, spacing)
        prepare(vol, mask, spacing)
        times.append(time.perf_counter() - start)
    print(f"median_s {sorted(times)[len(times) // 2]:.4f}")
    print(f"lung_ml {mask.sum() * np.prod(spacing) / 1000.0:.0f}")


if __name__ == "__main__":
    main()
