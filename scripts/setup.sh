#!/usr/bin/env bash
# Idempotent setup, run by `npm start`, `npm test` and `npm run bench` (and by .ci/run).
#
# On a fresh Debian 12 with Node 22 or 24 (see the README's quick start), right after `git clone`, it:
#   0. stops at once with the fix when the node on PATH is another version (package.json engines),
#   1. installs the system tools (libvirt, QEMU, virtnbdbackup, nats-server, redis, rsync, ssh, OVMF and swtpm for UEFI
#      and TPM guests, and chromium + prometheus for the status page tests, systemd-analyze for the unit's) when
#      running as root,
#   2. installs the npm dependencies when node_modules is missing or stale,
#   3. builds every workspace (`tsc -b`) and links `vmbs` into /usr/local/bin (root; a hint otherwise),
#   4. starts virtlogd + libvirtd by hand when running as root and libvirt does not answer (there is no systemd here).
# A second run does nothing expensive. It logs one line per step to stderr; command output is only shown on failure,
# or always with VMBS_SETUP_VERBOSE=1.
#
# Environment knobs:
#   CI=...                     use `npm ci` instead of `npm install`; also installs docker-compose.
#   VMBS_INSTALL_COMPOSE=1     also install docker-compose (only used to validate docker-compose.yml).
#   VMBS_SETUP_VERBOSE=1       stream the output of apt-get / npm / tsc instead of capturing it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command quietly: output goes to a temp file that is printed only if the command fails.
# Usage: run "what is being done" cmd args...
run() {
  local what="$1"; shift
  if [[ "${VMBS_SETUP_VERBOSE:-}" == "1" ]]; then
    "$@" >&2 || die "$what failed (command: $*)"
    return 0
  fi
  local out rc=0
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  if (( rc != 0 )); then
    printf '[setup] ---- output of: %s ----\n' "$*" >&2
    tail -n 200 "$out" >&2
    printf '[setup] ---- end of output ----\n' >&2
    rm -f "$out"
    die "$what failed with exit status $rc"
  fi
  rm -f "$out"
}

is_root() { [[ "$(id -u)" == "0" ]]; }

# command -v alone misses daemons in /usr/sbin when a non-root user's PATH lacks the sbin dirs.
have() {
  command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

sbin_path() {
  # Make sure /usr/sbin binaries (libvirtd, virtlogd, sshd) are found below, whatever PATH we were given.
  case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac
  export PATH
}
sbin_path

# ---------------------------------------------------------------------------------------------------------------------
# 0. Node: 22 or 24 (package.json engines). Debian 12's own nodejs is 18; 20 is end of life.
# ---------------------------------------------------------------------------------------------------------------------
node_fix="install Node 24 (or 22), e.g. from NodeSource: curl -fsSL https://deb.nodesource.com/setup_24.x | bash - && apt-get install -y nodejs (see the README's quick start)"
command -v node >/dev/null 2>&1 || die "node is not on PATH — $node_fix"
node_version="$(node --version)"
case "$node_version" in
  v22.*|v24.*) log "node: $node_version" ;;
  *) die "node $node_version ($(command -v node)) is not supported: VM-Babysitter needs Node 22 or 24 — $node_fix" ;;
esac

# ---------------------------------------------------------------------------------------------------------------------
# 1. System packages
# ---------------------------------------------------------------------------------------------------------------------
# Commands the project drives; the package list below provides all of them (Debian 12 package names).
required_cmds=(virsh libvirtd virtlogd qemu-system-x86_64 qemu-img virtnbdbackup virtnbdrestore nbdkit
               nats-server redis-server rsync sshd ssh rclone chromium prometheus promtool systemd-analyze swtpm swtpm_setup)
# Files the project needs that no command stands for: the UEFI firmware of the lab's UEFI domains.
required_files=(/usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd)
apt_packages=(virtnbdbackup python3-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
              libvirt-clients nats-server redis-server rsync openssh-server openssh-client rclone chromium prometheus systemd
              ovmf swtpm swtpm-tools nbdkit nbdkit-plugin-python)

if [[ -n "${CI:-}" || "${VMBS_INSTALL_COMPOSE:-}" == "1" ]]; then
  required_cmds+=(docker-compose)
  apt_packages+=(docker-compose)
fi

missing=()
for c in "${required_cmds[@]}"; do
  have "$c" || missing+=("$c")
done
for f in "${required_files[@]}"; do
  [[ -e "$f" ]] || missing+=("$f")
done
# Instant recovery serves chains through nbdkit's Python plugin (libs/virt/nbdkit), a package of its own.
have nbdkit && { nbdkit python --version >/dev/null 2>&1 || missing+=("nbdkit python plugin"); }

if (( ${#missing[@]} == 0 )); then
  log "system tools: all present"
elif is_root; then
  command -v apt-get >/dev/null 2>&1 || die "missing tools (${missing[*]}) and no apt-get to install them (Debian 12 expected)"
  log "system tools: missing ${missing[*]}; installing Debian packages (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  run "apt-get update" apt-get update
  run "apt-get install" apt-get install -y --no-install-recommends "${apt_packages[@]}"
  still_missing=()
  for c in "${missing[@]}"; do have "$c" || [[ -e "$c" ]] || still_missing+=("$c"); done
  (( ${#still_missing[@]} == 0 )) || die "still missing after apt-get install: ${still_missing[*]}"
else
  # Not fatal: a user may point the project at remote NATS / libvirt, or only want to build.
  log "system tools: missing ${missing[*]} (not root, not installing; tests/backups that need them will fail)"
fi

# libvirt runs swtpm as the tss user (a libvirtd started before swtpm-tools made that user runs it as root until it
# restarts). swtpm's local CA folder must then be tss's: files a root-run swtpm left there stop every later TPM
# domain from starting ("Need read/write rights on /var/lib/swtpm-localca/.lock.swtpm-localca for user tss").
if is_root && [[ -d /var/lib/swtpm-localca ]] && id tss >/dev/null 2>&1; then
  chown -R tss:root /var/lib/swtpm-localca
fi

# ---------------------------------------------------------------------------------------------------------------------
# 2. npm dependencies
# ---------------------------------------------------------------------------------------------------------------------
# node_modules/.package-lock.json is npm's record of what is installed. If the committed lockfile (or any package.json)
# is newer than it, the tree may be stale.
need_install=0
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json ]]; then
  need_install=1
else
  for f in package-lock.json package.json libs/*/package.json services/*/package.json cli/package.json bench/package.json; do
    if [[ -f "$f" && "$f" -nt node_modules/.package-lock.json ]]; then
      need_install=1
      break
    fi
  done
fi

if (( need_install )); then
  if [[ -n "${CI:-}" && -f package-lock.json ]]; then
    log "npm: clean install from package-lock.json (npm ci)"
    run "npm ci" npm ci --no-audit --no-fund
  else
    log "npm: installing dependencies (npm install)"
    run "npm install" npm install --no-audit --no-fund
  fi
  # npm may rewrite package-lock.json after writing node_modules/.package-lock.json; touch the marker so the next run
  # does not see a "newer" lockfile and reinstall for nothing.
  if [[ -f node_modules/.package-lock.json ]]; then touch node_modules/.package-lock.json; fi
else
  log "npm: dependencies up to date"
fi

# ---------------------------------------------------------------------------------------------------------------------
# 3. Build
# ---------------------------------------------------------------------------------------------------------------------
# Call the local tsc directly: `npx tsc` would silently download the unrelated npm package "tsc" if typescript were
# not installed (e.g. after an install that omitted devDependencies).
[[ -x node_modules/.bin/tsc ]] || die "node_modules/.bin/tsc not found: typescript (a devDependency) is not installed"
log "build: tsc -b"
run "TypeScript build (tsc -b)" node_modules/.bin/tsc -b
# The `vmbs` bin is linked by npm before the first build created it, so npm could not mark it executable.
chmod +x cli/dist/main.js
# `vmbs …` as the README writes it: /usr/local/bin/vmbs when root, a hint otherwise.
bash scripts/link-vmbs.sh

# ---------------------------------------------------------------------------------------------------------------------
# 4. libvirt daemons (root only; no systemd, so they are started by hand like in the lab)
# ---------------------------------------------------------------------------------------------------------------------
# Is a process with this exact name running? pgrep (procps) is not in every minimal image, so fall back to /proc.
running() {
  if command -v pgrep >/dev/null 2>&1; then
    pgrep -x "$1" >/dev/null
  else
    grep -qx "$1" /proc/[0-9]*/comm 2>/dev/null
  fi
}

virsh_ok() { timeout 10 virsh -c qemu:///system list >/dev/null 2>&1; }

if ! is_root; then
  log "libvirt: not root, not starting daemons"
elif ! have virsh || ! have libvirtd; then
  log "libvirt: not installed, skipping"
elif virsh_ok; then
  log "libvirt: qemu:///system answers"
else
  log "libvirt: qemu:///system not answering; starting virtlogd + libvirtd"
  # virtlogd collects QEMU's stdout/stderr; without it starting a domain fails.
  if ! running virtlogd; then
    run "starting virtlogd" virtlogd -d
  fi
  # libvirtd creates /run/libvirt and its sockets itself. Its pidfile is lock-based, so a stale one from a crashed
  # daemon does not block a new start.
  if ! running libvirtd; then
    run "starting libvirtd" libvirtd -d
  fi
  for _ in $(seq 1 60); do
    virsh_ok && break
    sleep 0.5
  done
  virsh_ok || die "libvirtd started but 'virsh -c qemu:///system list' still fails after 30 s (see /var/log/libvirt/)"
  log "libvirt: qemu:///system answers"
fi

log "done"
