#!/usr/bin/env bash
# Rebuilds the page's sample cases (public/samples/*.zip): four synthetic chest
# phantoms from `dsan phantoms` (seed 2026; 48 slices of 160 x 160 over the
# generator's 300 x 358 mm field of view), each series zipped with fixed
# timestamps. Synthetic data, not patients.
# Usage: bash tests/make_samples.sh [path to dsan]
set -euo pipefail
cd "$(dirname "$0")/.."
DSAN=${1:-target/debug/dsan}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$DSAN" phantoms --out "$WORK" --n 4 --seed 2026 --slices 48 --size 160
mkdir -p public/samples
python3 - "$WORK" public/samples <<'PY'
import pathlib, sys, zipfile
work, out = map(pathlib.Path, sys.argv[1:])
names = {"phantom-2026-0000": "cap-like-1", "phantom-2026-0001": "covid-19-like-1",
         "phantom-2026-0002": "cap-like-2", "phantom-2026-0003": "covid-19-like-2"}
for case, name in names.items():
    with zipfile.ZipFile(out / f"{name}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for f in sorted((work / case).iterdir()):
            info = zipfile.ZipInfo(f"{name}/{f.name}", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes(), compresslevel=9)
    print(out / f"{name}.zip")
PY
