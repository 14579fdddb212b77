#!/usr/bin/env bash
# Runs the whole test suite (compiled node:test files under */dist/). Assumes scripts/setup.sh ran (npm test does it).
#
# Extra arguments are passed to node before the file list, e.g.
#   npm test -- --test-name-pattern 'chain'
#   npm test -- --test-reporter=spec
# VMBS_TEST_NO_SWEEP=1 skips the leftover sweep below (use it when another test run shares this libvirt daemon:
# the sweep would destroy that run's live vmbs-lab-* domains).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test] %s\n' "$*" >&2; }

# Tests create libvirt domains named vmbs-lab-* with disk images under this folder (qemu must be able to traverse it,
# hence not a mktemp dir). A test run that crashed or was killed leaves them behind, possibly with a backup job still
# attached, which would make the next run's backups fail ("Detected an active backup operation").
LAB_PREFIX="vmbs-lab-"
LAB_IMAGES="/var/lib/libvirt/images/vmbs-lab"

v() { timeout 60 virsh -q -c qemu:///system "$@"; }

sweep_lab() {
  if ! command -v virsh >/dev/null 2>&1 || ! timeout 10 virsh -c qemu:///system list >/dev/null 2>&1; then
    log "sweep: libvirt (qemu:///system) not reachable, skipping domain sweep"
  else
    local names name n=0
    names="$(v list --all --name 2>/dev/null || true)"
    while IFS= read -r name; do
      [[ "$name" == "$LAB_PREFIX"* ]] || continue
      n=$((n + 1))
      # Order matters: end a dangling backup job first (QEMU then drops its NBD socket and scratch file), then stop the
      # domain, then undefine it together with its checkpoint metadata (plain undefine refuses with checkpoints).
      # Each step may legitimately fail (no job, already off, transient domain gone after destroy).
      v domjobabort "$name" >/dev/null 2>&1 || true
      v destroy "$name" >/dev/null 2>&1 || true
      v undefine "$name" --checkpoints-metadata >/dev/null 2>&1 || true
    done <<<"$names"
    log "sweep: removed $n leftover ${LAB_PREFIX}* domain(s)"
  fi

  if [[ -d "$LAB_IMAGES" ]]; then
    # Keep the folder itself (and its permissions), drop its contents.
    find "$LAB_IMAGES" -mindepth 1 -delete 2>/dev/null \
      || log "sweep: could not remove everything in $LAB_IMAGES (permissions?)"
  fi
}

if [[ "${VMBS_TEST_NO_SWEEP:-}" == "1" ]]; then
  log "sweep: skipped (VMBS_TEST_NO_SWEEP=1)"
else
  sweep_lab
fi

# Node 20's --test does not expand globs, so list the compiled test files ourselves. Paths here contain no spaces.
mapfile -t files < <(find libs services cli -path '*/node_modules' -prune -o -path '*/dist/*' -name '*.test.js' -print | sort)

if (( ${#files[@]} == 0 )); then
  log "no compiled test files (*/dist/**/*.test.js) found: did the build run?"
  exit 1
fi
log "running ${#files[@]} test file(s)"

# Files run one at a time: they share one libvirt daemon and the lab image folder.
# exec: node's exit status is the script's exit status, and signals (Ctrl-C, CI timeouts) reach node directly.
exec node --test --test-concurrency=1 --test-timeout=600000 "$@" "${files[@]}"
