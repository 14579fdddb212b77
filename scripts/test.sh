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

# Two lanes run side by side. Files that touch libvirt (lab domains, agents, the CLI, the engine) run in the lab lane;
# the rest (pure tests, NATS/Redis/HTTP-only services) run in the independent lane meanwhile, which saves their
# waiting time (e.g. the notifier's 30 s outage). A file is in the lab lane when it mentions any of these names.
LAB_MARKERS='createLab|ChainTestKit|AgentHarness|[cC]hainFixture|createLibvirt|qemu:///|"virsh"|runEngine|startChildAgent|cli/dist/main|\./main\.js'
# A file that runs the CLI but never reaches libvirt (no agent, no `vmbs start`) says so with this line, and runs in
# the independent lane whatever it mentions.
INDEPENDENT_MARK='^// test lane: independent'
# Lab files share one libvirt daemon and the lab image folder, yet VMBS_TEST_LAB_LANES of them (default 2) run at once:
# every lab names its domains with a prefix of its own (libs/lab lab.ts), and every test agent backs up only those
# (VM_ALLOWED_LIST = lab.allowedList), so no file's agent adopts a domain another file defines meanwhile. A file that
# changes what all of them share (restarts libvirtd) carries this line and runs alone, after the other lab files.
EXCLUSIVE_MARK='^// test lane: exclusive'
lab_lanes="${VMBS_TEST_LAB_LANES:-2}"
if ! [[ "$lab_lanes" =~ ^[1-9][0-9]*$ ]]; then
  log "VMBS_TEST_LAB_LANES must be a whole number of at least 1, not '$lab_lanes'"
  exit 2
fi
lab_files=()
exclusive_files=()
independent_files=()
for f in "${files[@]}"; do
  if grep -qE "$INDEPENDENT_MARK" "$f" || ! grep -qE "$LAB_MARKERS" "$f"; then independent_files+=("$f")
  elif grep -qE "$EXCLUSIVE_MARK" "$f"; then exclusive_files+=("$f")
  else lab_files+=("$f"); fi
done

# The lab lane starts its longest files first (seconds of a recent run, scripts/lab-test-seconds.txt), so the short ones
# fill the gaps at the end. A file not listed there is taken for a long one (new lab files are rarely short).
declare -A lab_seconds=()
while read -r secs src; do lab_seconds["$src"]="$secs"; done < <(grep -vE '^(#|$)' scripts/lab-test-seconds.txt)
mapfile -t lab_files < <(
  for f in "${lab_files[@]}"; do
    src="${f/\/dist\//\/src\/}"
    printf '%s\t%s\n' "${lab_seconds["${src%.js}.ts"]:-600}" "$f"
  done | sort -t$'\t' -k1,1nr -k2,2 | cut -f2
)
log "lab lane: ${#lab_files[@]} file(s), $lab_lanes at a time, then ${#exclusive_files[@]} alone; independent lane: ${#independent_files[@]} file(s)"

# One file at a time in each node --test. Started as a simple command, so that `$!` is node itself and a signal
# passed on reaches it.
node_test=(node --test --test-concurrency=1 --test-timeout=600000)

# node --test sorts the files it is given, so the lab lane keeps its own queue: each of $lab_lanes workers runs one file
# at a time (a node --test of its own) and takes the next from the queue when it ends. A file's report is printed
# whole once it ends, so the reports of files that ran side by side never interleave.
work="$(mktemp -d)"
printf '%s\n' "${lab_files[@]}" >"$work/lab-queue"
: >"$work/lab-failed"
next_lab_file() { flock "$work/lock" sh -c 'head -n 1 "$1" && sed -i 1d "$1"' sh "$work/lab-queue"; }
lab_worker() {
  local f report node_pid rc
  trap 'kill "$node_pid" 2>/dev/null; exit 143' INT TERM
  while f="$(next_lab_file)" && [[ -n "$f" ]]; do
    report="$(mktemp -p "$work")"
    "${node_test[@]}" "$@" "$f" >"$report" 2>&1 &
    node_pid=$!
    rc=0
    wait "$node_pid" || rc=$?
    flock "$work/lock" sh -c 'cat "$1"; if [ "$2" != 0 ]; then printf "%s\n" "$3" >>"$4"; fi' sh "$report" "$rc" "$f" "$work/lab-failed"
    rm -f "$report"
  done
}

# The independent lane's report goes to a file, printed after the lab lane's so the two do not interleave. All lanes
# run in the background so that a SIGINT/SIGTERM to this script (Ctrl-C, CI timeouts) can be passed on to them.
independent_log="$work/independent.log"
pids=()
trap 'rm -rf "$work"' EXIT
interrupted=""
trap 'interrupted=1; kill "${pids[@]}" 2>/dev/null || true' INT TERM
if (( ${#independent_files[@]} > 0 )); then
  "${node_test[@]}" "$@" "${independent_files[@]}" >"$independent_log" 2>&1 &
  independent_pid=$!
  pids+=("$independent_pid")
fi
lab_workers=()
for (( w = 0; w < lab_lanes; w++ )); do
  lab_worker "$@" &
  lab_workers+=("$!")
  pids+=("$!")
done
# `wait` returns early when a trapped signal arrives; wait again so the lanes' own statuses are collected.
lab_rc=0
for w in "${lab_workers[@]}"; do
  worker_rc=0
  wait "$w" || worker_rc=$?
  while (( worker_rc > 128 )) && kill -0 "$w" 2>/dev/null; do worker_rc=0; wait "$w" || worker_rc=$?; done
  if (( worker_rc != 0 )); then lab_rc="$worker_rc"; fi
done
if [[ -s "$work/lab-failed" ]] && (( lab_rc == 0 )); then lab_rc=1; fi
# Only once no other lab file runs: the exclusive ones, one at a time.
if (( ${#exclusive_files[@]} > 0 )) && [[ -z "$interrupted" ]]; then
  exclusive_rc=0
  "${node_test[@]}" "$@" "${exclusive_files[@]}" &
  exclusive_pid=$!
  pids+=("$exclusive_pid")
  wait "$exclusive_pid" || exclusive_rc=$?
  if (( exclusive_rc > 128 )) && kill -0 "$exclusive_pid" 2>/dev/null; then exclusive_rc=0; wait "$exclusive_pid" || exclusive_rc=$?; fi
  if (( exclusive_rc != 0 )); then lab_rc=1; printf '%s\n' "${exclusive_files[@]}" >>"$work/lab-failed"; fi
fi
independent_rc=0
if [[ -n "${independent_pid:-}" ]]; then
  wait "$independent_pid" || independent_rc=$?
  if (( independent_rc > 128 )) && kill -0 "$independent_pid" 2>/dev/null; then independent_rc=0; wait "$independent_pid" || independent_rc=$?; fi
  log "independent lane report:"
  cat "$independent_log"
fi
if [[ -s "$work/lab-failed" ]]; then
  log "lab lane: failed file(s):"
  sed 's/^/[test]   /' "$work/lab-failed" >&2
fi
log "lab lane exit status: $lab_rc; independent lane exit status: $independent_rc"
if (( lab_rc != 0 )); then exit "$lab_rc"; fi
exit "$independent_rc"
