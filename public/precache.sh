#!/usr/bin/env bash
# Run by Trunk after each build (post_build hook in Trunk.toml; not part of the
# site): lists every file of the build in precache.json for the service worker
# (public/sw.js) and stamps the build's version into sw.js. The version is
# derived from the content of every file, so any change gives a new cache.
# Needs only bash, coreutils and findutils.
set -euo pipefail
cd "${TRUNK_STAGING_DIR:?run by trunk}"

# Every file but precache.json itself (sw.js counts towards the version, but the
# browser keeps the worker script on its own, so it is not listed).
mapfile -t files < <(find . -type f ! -path ./precache.json -printf '%P\n' | LC_ALL=C sort)
version=$(sha256sum -- "${files[@]}" | sha256sum | cut -c1-16)

{
    printf '{\n  "version": "%s",\n  "files": [' "$version"
    sep=''
    for f in "${files[@]}"; do
        [ "$f" = sw.js ] && continue
        f=${f//\\/\\\\}
        printf '%s\n    "%s"' "$sep" "${f//\"/\\\"}"
        sep=','
    done
    printf '\n  ]\n}\n'
} > precache.json

sed -i "s/^const VERSION = '[^']*';/const VERSION = '$version';/" sw.js
grep -q "^const VERSION = '$version';" sw.js || { echo "precache.sh: no VERSION line in sw.js" >&2; exit 1; }
echo "precache.sh: $((${#files[@]} - 1)) files listed, version $version"
