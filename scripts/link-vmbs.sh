#!/usr/bin/env bash
# Puts `vmbs` on the PATH, as the README writes it: a symlink BIN_DIR/vmbs -> this clone's cli/dist/main.js, whose
# `#!/usr/bin/env -S node …` line runs it on the node first on PATH. Run by setup.sh after the build.
# BIN_DIR: $VMBS_BIN_DIR, else /usr/local/bin when root; otherwise it only prints the command to link it yourself.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

main="$PWD/cli/dist/main.js"
[[ -f "$main" ]] || { log "vmbs: $main is not built (run scripts/setup.sh)"; exit 1; }
bin_dir="${VMBS_BIN_DIR:-}"
if [[ -z "$bin_dir" ]]; then
  if [[ "$(id -u)" != "0" ]]; then
    log "vmbs: not root, not linked; to run \`vmbs\` by name: ln -sfn $main ~/.local/bin/vmbs (or any folder on your PATH)"
    exit 0
  fi
  bin_dir=/usr/local/bin
fi
link="$bin_dir/vmbs"
# A file of someone else's (a package's vmbs, say) is not replaced; a link is, so the last clone set up is the one run.
if [[ -e "$link" && ! -L "$link" ]]; then
  log "vmbs: $link exists and is not a link; left as it is (run $main instead, or remove it)"
  exit 0
fi
mkdir -p "$bin_dir"
ln -sfn "$main" "$link"
log "vmbs: $link -> $main"
