# Sourced by .ci/run and ci/test.sh: installs what is missing from Debian's
# packages and PyPI, as root or through sudo, and puts PyPI's scripts on PATH.
# shellcheck shell=bash

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# apt_install PACKAGE...: the Debian packages not installed yet.
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" > /dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        $sudo apt-get update -qq
        $sudo apt-get install -y --no-install-recommends "${missing[@]}" > /dev/null
    fi
}

# pip_install PACKAGE...: a user install where the OS manages the system Python.
pip_install() {
    local flags=(--quiet --disable-pip-version-check)
    if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        flags+=(--user --break-system-packages)
        PATH="$(python3 -m site --user-base)/bin:$PATH"
    fi
    python3 -m pip install "${flags[@]}" "$@"
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
}
