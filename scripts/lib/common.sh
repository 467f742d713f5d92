# Shared by the RxEdge scripts: repo root, logging, idempotent installs.
# shellcheck shell=bash
set -euo pipefail

RXEDGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export RXEDGE_ROOT
cd "$RXEDGE_ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages every RxEdge build, test or demo may need. Later work
# (OCR, camera) needs the Tesseract, Leptonica and clang headers, so they are
# installed from the start and a fresh machine needs only one setup.
RXEDGE_APT_PACKAGES=(
  build-essential pkg-config
  mosquitto mosquitto-clients
  postgresql postgresql-client
  libtesseract-dev libleptonica-dev libclang-dev clang poppler-utils
  tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-ita
  curl ca-certificates procps tzdata
  prometheus
)

apt_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  printf '%s\n' "${missing[@]}"
}

# apt-get update, retried: a mirror mid-sync answers with index files of the
# wrong size for a minute or so ("Mirror sync in progress?").
apt_update() {
  local i
  for i in 1 2 3 4; do
    apt-get update -qq "$@" && return 0
    say "apt-get update failed (attempt $i); retrying in $((i * 10)) s"
    sleep $((i * 10))
  done
  die "apt-get update kept failing"
}

ensure_apt() {
  local missing
  mapfile -t missing < <(apt_missing "$@" | sed '/^$/d')
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root, or install them with apt-get"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null 2>&1; then
    say "installing Rust (rustup, stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain stable >/dev/null
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found after installing rustup"
}

# Chromium and playwright-core for the browser tests (no bundled browser download).
ensure_browser_tools() {
  ensure_apt chromium fonts-dejavu-core
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
  if [ ! -d "$RXEDGE_ROOT/tests/browser/node_modules/playwright-core" ]; then
    say "installing playwright-core (npm ci)"
    (cd "$RXEDGE_ROOT/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# One target dir for everything (builds are large and slow on small machines).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$RXEDGE_ROOT/target}"
export OMP_THREAD_LIMIT=1
