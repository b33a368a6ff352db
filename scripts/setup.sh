#!/usr/bin/env bash
# Installs everything Instock needs on a fresh Debian machine, with or without access to GitHub.
#
#   npm run setup        (or: bash scripts/setup.sh)
#
# 1. Debian packages: the Kafka client's native build needs libssl-dev + zlib1g-dev; the local
#    services need redis-server, redis-tools and prometheus; Java 17 + Maven fetch the Kafka broker.
# 2. npm dependencies. @confluentinc/kafka-javascript downloads a prebuilt binary from GitHub; when
#    GitHub cannot be reached that download fails, and only a build with CKJS_LINKING=dynamic
#    (librdkafka linked against Debian's libssl and zlib) works. We probe GitHub first and go
#    straight to the dynamic build when it is unreachable; if the prebuilt path fails anyway we
#    retry with the dynamic build.
# 3. The TypeScript build (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
started=$(date +%s)

debian_packages=(libssl-dev zlib1g-dev pkg-config build-essential python3 redis-server redis-tools prometheus)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# `npm install`, not `npm ci`: the registry lacks some other platforms' optional binaries
# (@chdb/lib-darwin-*), which npm therefore leaves out of package-lock.json, and `npm ci` then
# refuses the lock as out of sync. `npm install` installs exactly the locked versions and leaves
# the lock file unchanged.
npm_install() {
  npm install --no-audit --no-fund "$@"
}

if [ -n "${CKJS_LINKING:-}" ]; then
  log "CKJS_LINKING=$CKJS_LINKING set by caller"
  npm_install
elif curl -sS --max-time 5 -o /dev/null https://github.com 2>/dev/null; then
  log "GitHub reachable: trying the Kafka client's prebuilt binary"
  if ! npm_install; then
    log "prebuilt install failed: rebuilding the Kafka client against Debian's libssl/zlib (CKJS_LINKING=dynamic, ~60 s)"
    CKJS_LINKING=dynamic npm_install
  fi
else
  log "GitHub unreachable: building the Kafka client against Debian's libssl/zlib (CKJS_LINKING=dynamic, ~60 s)"
  CKJS_LINKING=dynamic npm_install
fi

node -e "require('@confluentinc/kafka-javascript')" || { log "the Kafka client does not load after install"; exit 1; }
log "building TypeScript"
npm run build --silent
log "done in $(( $(date +%s) - started )) s"
