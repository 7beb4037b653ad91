#!/bin/sh
# Installs everything diyc, its tests and its benchmarks need on Debian 12,
# as root, then builds diyc into ./.venv.  Safe to run again.
set -eu
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# busybox-static: the built-in default image; the rest: build tools, and the
# peers and fixtures the tests and benchmarks use (runc, crun, a registry,
# containerd and the CNI plugins for the Kubernetes (CRI) tests).
apt-get install -y -qq --no-install-recommends \
    python3 python3-venv python3-dev gcc libc6-dev \
    busybox-static iproute2 iptables nftables \
    runc crun containerd containernetworking-plugins podman netavark docker-registry \
    skopeo umoci apache2-utils >/dev/null

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check \
    "cython>=3" setuptools wheel pytest pytest-benchmark zstandard pyroute2
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps .
# The extension also goes next to the sources, so that tests and benchmarks
# run from this checkout import the same code whichever copy they find.
.venv/bin/python setup.py -q build_ext --inplace 2>/dev/null

# pip writes `#!.../python` into scripts and drops any interpreter flags.
# Start the Python CLI with -IS: no `site` (~2.5 ms of a ~10 ms start), no
# PYTHON* variables; bin/diyc-py then finds the venv's site-packages itself.
sed -i '1s|^#!\(.*python[0-9.]*\)$|#!\1 -IS|' .venv/bin/diyc-py .venv/bin/diyc-runc-py
# `diyc` and `diyc-runc` are the C launcher: the diyc server runs the
# command, else the launcher execs diyc-py / diyc-runc-py next to it.
launcher="$(.venv/bin/python -I -c 'import diyc, os; print(os.path.dirname(diyc.__file__))')/diyc-launcher"
install -m 755 "$launcher" .venv/bin/diyc
install -m 755 "$launcher" .venv/bin/diyc-runc
# crictl and critest for the Kubernetes (CRI) tests, built offline from the
# conformance tarball beside this checkout when it is there (the CRI tests
# skip, saying so, without them).
CRI_TARBALL=../shared/conformance/cri-tools-v1.26.1.tar.gz
if [ -f "$CRI_TARBALL" ] && ! { [ -x /var/tmp/diyc-cri-tools/crictl ] && [ -x /var/tmp/diyc-cri-tools/critest ]; }; then
    ./scripts/build-cri-tools.sh >/dev/null
fi
echo "diyc installed: $(pwd)/.venv/bin/diyc"
