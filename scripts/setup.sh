#!/usr/bin/env bash
# Make a ready dev environment (system packages, .venv, editable install with dev extras). Idempotent.
#   scripts/setup.sh            run from any directory
#   scripts/setup.sh --with-postgres   also the PostgreSQL server binaries the tests use (scripts/test.sh)
#   scripts/setup.sh --with-diameter-peers   also the Diameter peers of the `-m diameter_peers` tests: tshark,
#                                            Kamailio with its IMS modules, SIPp (sip-tester) and freeDiameter
#   scripts/setup.sh --with-browser    also Debian's chromium and the `browser` extra (Playwright, axe-core) for the
#                                      console's browser tests (pytest -m browser, tests/occ/console/browser)
#   . scripts/setup.sh          (bash) the same, then activates .venv in the current shell

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a child shell so set -e and exit cannot touch the caller, then activate here.
    bash "${BASH_SOURCE[0]}" && . "$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/activate"
    return
fi

set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

py=""
for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        py=$cand
        break
    fi
done
[[ -n $py ]] || die "Python >= 3.11 not found (tried python3.13 python3.12 python3.11 python3)"
py_ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
log "using $(command -v "$py") ($py_ver)"

# venv needs ensurepip too; Debian/Ubuntu ship both only with pythonX.Y-venv.
venv_ok() { "$py" -m venv --help >/dev/null 2>&1 && "$py" -c 'import ensurepip' >/dev/null 2>&1; }

with_postgres=false
with_diameter_peers=false
with_browser=false
for arg in "$@"; do
    case $arg in
        --with-postgres) with_postgres=true ;;  # the tests start a private PostgreSQL server of their own
        --with-diameter-peers) with_diameter_peers=true ;;  # tests/diameter_peers: stacks no one here wrote
        --with-browser) with_browser=true ;;  # Playwright drives the system Chromium (its own download is unavailable)
        *) die "unknown option $arg (known: --with-postgres, --with-diameter-peers, --with-browser)" ;;
    esac
done
has_initdb() { command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

# Every apt-get install comes after one apt-get update in this run: on a fresh machine the package lists are missing
# or stale, and an install from them fails. $@: the command prefix (sudo or nothing).
apt_updated=false
apt_update_once() {
    $apt_updated && return 0
    log "apt-get update"
    "$@" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq || return 1
    apt_updated=true
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Invoice PDFs embed DejaVu Sans (settlement/billing/pdf.py): Unicode names and currency symbols.
dejavu=/usr/share/fonts/truetype/dejavu
[[ -f $dejavu/DejaVuSans.ttf && -f $dejavu/DejaVuSans-Bold.ttf ]] || missing+=(fonts-dejavu-core)
if $with_postgres && ! has_initdb; then
    missing+=(postgresql)
fi
if $with_diameter_peers; then
    # program → Debian package: Wireshark's dissector, the Ro client (ims_charging and cdp are in the IMS modules),
    # the SIP call generator, the Diameter relay agent.
    command -v tshark >/dev/null 2>&1 || missing+=(tshark)
    command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
    compgen -G '/usr/lib/*/kamailio/modules/ims_charging.so' >/dev/null || missing+=(kamailio-ims-modules)
    command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
    command -v freeDiameterd >/dev/null 2>&1 || missing+=(freediameterd)
    compgen -G '/usr/lib/freeDiameter/acl_wl.fdx' >/dev/null || compgen -G '/usr/lib/*/freeDiameter/acl_wl.fdx' \
        >/dev/null || missing+=(freediameter-extensions)  # acl_wl admits the relay test's client
fi
if $with_browser && [[ ! -x /usr/bin/chromium ]]; then
    missing+=(chromium)
fi
if [[ ! -x .venv/bin/python ]] && ! venv_ok; then
    missing+=(venv)
fi
if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get; install them by hand"
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "missing: ${missing[*]}"
    apt_update_once "${sudo[@]}" || die "apt-get update failed"
    pkgs=()
    for m in "${missing[@]}"; do
        if [[ $m == venv ]]; then
            if apt-cache show "python$py_ver-venv" >/dev/null 2>&1; then m="python$py_ver-venv"; else m=python3-venv; fi
        fi
        pkgs+=("$m")
    done
    log "apt-get install ${pkgs[*]}"
    # Non-interactive: tshark's question (may non-root users capture?) keeps its default, no.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${pkgs[@]}" >/dev/null
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH"
! $with_browser || [[ -x /usr/bin/chromium ]] || die "chromium still missing (/usr/bin/chromium)"
[[ -f $dejavu/DejaVuSans.ttf ]] || die "fonts-dejavu-core still missing ($dejavu/DejaVuSans.ttf)"

if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    venv_ok || die "$py cannot create virtual environments (venv/ensurepip missing)"
    "$py" -m venv .venv
fi

# Optional: h2load (Debian's nghttp2-client, ~1 MB) for the peak mode of `occ bench`, which works without it.
# Tried once per .venv (a stamp file), never fatal; OCC_SKIP_H2LOAD=1 skips it.
if [[ ${OCC_SKIP_H2LOAD:-} != 1 && ! -e .venv/.h2load-tried ]] && ! command -v h2load >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
    log "apt-get install nghttp2-client (optional: h2load for occ bench's peak mode)"
    if ! apt_update_once "${sudo[@]}" \
        || ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends \
            nghttp2-client >/dev/null 2>&1; then
        log "h2load not installed (optional): occ bench will skip its peak mode"
    fi
    touch .venv/.h2load-tried
fi

stamp=.venv/.occ-installed
extras=dev
! $with_browser || extras=dev,browser
# An extra installed once stays: the stamp names the extras, and a run without --with-browser after one with it
# keeps the browser packages (a reinstall with fewer extras removes nothing).
[[ -f $stamp && $(<"$stamp") == *",browser" ]] && extras=dev,browser
want="$(sha256sum pyproject.toml | cut -d' ' -f1),$extras"
# The editable install maps top-level packages present at install time; a package added since needs a reinstall.
pkgs_mapped() {
    local names=() d
    for d in occ rating_engine settlement; do [[ -f $d/__init__.py ]] && names+=("$d"); done
    .venv/bin/python -I -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(n) is None for n in sys.argv[1:]))' \
        "${names[@]}"
}
if [[ -f $stamp && $(<"$stamp") == "$want" ]] && pkgs_mapped; then
    log "dependencies up to date (pyproject.toml unchanged), skipping pip install"
else
    log "upgrading pip"
    .venv/bin/python -m pip install --quiet --upgrade pip
    log "installing -e '.[$extras]'"
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
    printf '%s\n' "$want" >"$stamp"
fi
scripts/gen_proto.sh .venv/bin/python
log "ready: .venv ($(.venv/bin/python --version 2>&1))"
