#!/usr/bin/env bash
# Peak memory of `dsan inspect` and `dsan predict` on studies as big as
# scanners make them (issue 17): one 2,000-slice 512 x 512 series (1 GB of
# DICOM files), and a folder of six 1,000-slice 512 x 512 series (3 GB), all
# synthetic phantoms from `dsan phantoms`. Each peak is printed as a bench line
# with its ratio to the reference: the 16-bit volume of the series assembled.
#
# Usage: bash benches/large_study.sh [path to dsan]   (default: the release build)
# Environment: WORK, where the studies are written (default a temporary
# folder, removed afterwards; 4.1 GB of disk).
set -euo pipefail
cd "$(dirname "$0")/.."
DSAN=${1:-target/release/dsan}
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

# The phantoms' DICOM series, unless a previous run left them in $WORK (the
# generator's infection masks and labels are removed: a study holds images).
study() {
    local dir=$1 n=$2 slices=$3
    [ -d "$dir" ] && return
    "$DSAN" phantoms --out "$dir" --n "$n" --seed 17 --slices "$slices" --size 512 > /dev/null
    find "$dir" -maxdepth 1 -type f -delete
}

# `dsan $command` on $dir: peak resident memory and wall time, and the ratio
# of the peak to $slices 16-bit slices of 512 x 512.
measure() {
    local name=$1 slices=$2 dir=$3 command=$4
    shift 4
    local log=$WORK/$name-$command.time
    /usr/bin/time -v -o "$log" "$DSAN" "$command" "$dir" "$@" > /dev/null
    python3 - "$log" "$name" "$command" "$slices" "$(du -sb "$dir" | cut -f1)" <<'PY'
import re, sys
log, name, command, slices, files = sys.argv[1:]
text = open(log).read()
peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1]) * 1024
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)[1]
volume = int(slices) * 512 * 512 * 2
print(f"# bench: dsan {command} on {name} ({int(files) / 1e9:.2f} GB of files): peak "
      f"{peak / 2**20:.0f} MiB, {peak / volume:.2f}x its 16-bit volume ({volume / 2**20:.0f} MiB); "
      f"wall {wall}")
PY
}

study "$WORK/thin" 1 2000
study "$WORK/folder" 6 1000
thin=$(find "$WORK/thin" -mindepth 1 -maxdepth 1 -type d | head -n 1)
for command in inspect predict; do
    measure "one 2000-slice series" 2000 "$thin" "$command"
    measure "six 1000-slice series" 1000 "$WORK/folder" "$command"
done
