#!/usr/bin/env bash
# Rebuilds the page's sample cases (public/samples/*.zip): four synthetic chest
# phantoms from `dsan phantoms` (seed 2026, outside the default model's
# training and held-out seeds; 48 slices of 160 x 160 over the generator's
# 300 x 358 mm field of view), each series zipped with fixed timestamps.
# Synthetic data, not patients.
#
# The samples show typical cases of each class: of the first 40 cases of seed
# 2026, the first two of each class whose infected share of the lungs
# (phantoms.json) lies between that class's quartiles among the 40. Small
# early-stage infections, where the default model is weakest (its card gives
# the sensitivity by infection size), are left to the held-out evaluation.
# Usage: bash tests/make_samples.sh [path to dsan]
set -euo pipefail
cd "$(dirname "$0")/.."
DSAN=${1:-target/debug/dsan}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$DSAN" phantoms --out "$WORK" --n 40 --seed 2026 --slices 48 --size 160
mkdir -p public/samples
python3 - "$WORK" public/samples <<'PY'
import json, pathlib, statistics, sys, zipfile
work, out = map(pathlib.Path, sys.argv[1:])
cases = json.loads((work / "phantoms.json").read_text())["cases"]
names = {"CAP": "cap-like", "COVID-19": "covid-19-like"}
for label, stem in names.items():
    mine = [c for c in cases if c["label"] == label]
    share = lambda c: c["infection_ml"] / c["lung_ml"]
    q1, _, q3 = statistics.quantiles([share(c) for c in mine], n=4)
    typical = [c for c in mine if q1 <= share(c) <= q3][:2]
    for i, case in enumerate(typical, start=1):
        name = f"{stem}-{i}"
        with zipfile.ZipFile(out / f"{name}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for f in sorted((work / case["case_id"]).iterdir()):
                info = zipfile.ZipInfo(f"{name}/{f.name}", date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, f.read_bytes(), compresslevel=9)
        print(f"{out / name}.zip: {case['case_id']}, {label}, {case['lesions']} lesion(s), "
              f"{100 * share(case):.1f}% of the lungs infected (class quartiles {100 * q1:.1f}-{100 * q3:.1f}%)")
PY
