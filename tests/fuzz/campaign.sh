#!/usr/bin/env bash
# The fuzz campaign on record (README, "Fuzzing"): both cargo-fuzz targets,
# their corpora seeded from ../shared/data, for a fixed number of executions
# each; libFuzzer's last lines give the edges covered (`cov`) and the corpus
# grown (`corp`).
#
#   read_input   every reader of dropped files: DICOM (with and without
#                preamble), .zip archives, NIfTI
#   load_model   a site's own model: the card's checks, then the weights
#                record read for the card's network
#
# Usage: bash tests/fuzz/campaign.sh   (from anywhere; needs nightly and
# `cargo install cargo-fuzz`)
# Environment:
#   DATA          the shared data (default ../shared/data beside the clone)
#   RUNS_READ     executions of read_input (default 8,000,000)
#   RUNS_MODEL    executions of load_model (default 2,000,000)
#   FUZZ_SECONDS  stop each target after this many seconds even if its runs
#                 are not done (default 0: no time limit)
#   SANITIZER     cargo-fuzz's sanitizer (default address); `none` runs
#                 5-9x faster, but then nothing watches the dependencies'
#                 `unsafe` code, and only the resident-size limit catches an
#                 over-allocation, not libFuzzer's 1 GB malloc limit, which
#                 needs a sanitizer's hooks
# A crash, an allocation past 1 GB or a resident size past 2 GB stops the target and leaves its input in
# tests/fuzz/artifacts/<target>/: fix it, then add the input to the
# regression set (tests/fixtures/fuzz/<target>/), which the tests replay.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
RUNS_READ=${RUNS_READ:-8000000}
RUNS_MODEL=${RUNS_MODEL:-2000000}
FUZZ_SECONDS=${FUZZ_SECONDS:-0}
SANITIZER=${SANITIZER:-address}
corpus=tests/fuzz/corpus
mkdir -p "$corpus/read_input" "$corpus/load_model"

# Seeds: every DICOM or NIfTI file of the shared data under 256 KiB (named by
# content, so files of the same name do not collide), a .zip of three of
# them, the regression inputs, and the tiny network's card and weights.
find "$DATA" -type f -size -256k \( -name '*.dcm' -o -name '*.nii' -o -name '*.nii.gz' \
    -o -regex '.*/[0-9.]+' \) -print0 |
    while IFS= read -r -d '' file; do
        cp "$file" "$corpus/read_input/seed-$(sha1sum "$file" | cut -c1-16)"
    done
python3 - "$DATA" "$corpus/read_input/seed-zip" <<'PY'
import pathlib, sys, zipfile
files = sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*.dcm") if p.stat().st_size < 65536)[:3]
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    for f in files:
        z.writestr(f"study/{f.name}", f.read_bytes())
PY
for target in read_input load_model; do
    if [ -d "tests/fixtures/fuzz/$target" ]; then
        cp tests/fixtures/fuzz/"$target"/* "$corpus/$target/"
    fi
done
for target in read_input load_model; do
    cargo +nightly fuzz build --fuzz-dir tests/fuzz -O -s "$SANITIZER" "$target"
done
# The seed writer is no fuzz target: built plainly, since without a
# sanitizer's runtime nothing defines the coverage hooks cargo-fuzz adds.
cargo +nightly run --quiet --release --manifest-path tests/fuzz/Cargo.toml --bin seeds -- "$corpus/load_model"

# libFuzzer on $1 for $2 executions of inputs up to $3 bytes, its output in
# tests/fuzz/artifacts/<target>.log; the two targets run side by side.
run() {
    local target=$1 runs=$2 max_len=$3
    mkdir -p "tests/fuzz/artifacts/$target"
    local started=$SECONDS status=0
    cargo +nightly fuzz run --fuzz-dir tests/fuzz -O -s "$SANITIZER" "$target" "$corpus/$target" -- \
        -runs="$runs" -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="tests/fuzz/artifacts/$target/" > "tests/fuzz/artifacts/$target.log" 2>&1 || status=$?
    echo "# fuzz: $target: $runs executions in $((SECONDS - started)) s, exit status $status"
    grep -E '^#[0-9]+ +DONE|^stat::|Done [0-9]+ runs' "tests/fuzz/artifacts/$target.log" || true
    return $status
}
run read_input "$RUNS_READ" 65536 &
reader=$!
# The tiny network's card and weights take 100-odd KB.
run load_model "$RUNS_MODEL" 262144 &
model=$!
failed=0
wait $reader || failed=1
wait $model || failed=1
exit $failed
