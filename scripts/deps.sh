# scripts/deps.sh - sourced by test.sh and demo.sh: make sure the Debian
# packages a step needs are there, installing them with apt-get when run as
# root, or saying exactly what is missing otherwise.
#   need_packages PKG...   returns 0 when all are installed (now)
need_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "corio: missing Debian packages: ${missing[*]}" >&2
        echo "corio: install them with: sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "corio: installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
        { echo "corio: could not install: ${missing[*]}" >&2; return 1; }
}

# The library and its native tests; the checked builds; the arm64 cross test.
CORIO_BUILD_PACKAGES="gcc make libc6-dev liburing-dev valgrind"  # valgrind.h: stacks are registered with it
CORIO_ARM64_PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static"
