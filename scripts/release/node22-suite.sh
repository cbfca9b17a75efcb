#!/usr/bin/env bash
# Runs the README's test command under Node 22, in a scratch copy of the repository so that the
# native modules built for Node 22 never replace the ones the working tree uses.
#
# Node 22 comes from the registry: the `node@22` package installs a Node binary, and its
# `node-<platform>-<arch>` dependency ships the headers under include/, which node-gyp takes as
# `nodedir` to build better-sqlite3 for that Node without downloading anything else.
# Usage: scripts/release/node22-suite.sh [scratch folder] [test files...]
# With test files, only those run (`vitest run <files>`) after the install, to try the setup.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/egress-node22-XXXXXX")}"
shift || true
# Tests that drop root's rights run this Node binary as another user: it must be reachable.
mkdir -p "$work" && chmod 755 "$work"
log() { printf '[node22] %s\n' "$*"; }
started=$SECONDS

mkdir -p "$work/runtime"
npm install --prefix "$work/runtime" --no-save --no-audit --no-fund --loglevel=error node@22 >/dev/null
runtime="$work/runtime/node_modules/node"
headers="$(find "$work/runtime/node_modules" -maxdepth 4 -type d -name "node-$(uname -s | tr 'A-Z' 'a-z')-*" | head -n 1)"
version="$("$runtime/bin/node" --version)"
case "$version" in v22.*) ;; *) log "expected Node 22, got $version"; exit 1 ;; esac
[ -f "$headers/include/node/node.h" ] || { log "no Node headers under $headers/include"; exit 1; }
log "Node $version at $runtime/bin/node, headers in $headers ($((SECONDS - started)) s)"

# The repository as committed plus the working tree's changes, without node_modules or builds.
rm -rf "$work/repository"
mkdir -p "$work/repository"
(cd "$root" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' file; do
  [ -e "$file" ] && printf '%s\0' "$file"
done | xargs -0 cp --parents -t "$work/repository")
# A repository of its own, so that tests that list the repository's files (git ls-files) work there.
(cd "$work/repository" && git init -q && git add -A)

cd "$work/repository"
export PATH="$runtime/bin:$PATH"
# better-sqlite3 is compiled against these headers instead of looking for a prebuilt binary online.
export npm_config_nodedir="$headers"
install() { npm_config_build_from_source=true npx -y pnpm@10 install; }
log "node $(node --version), in $work/repository"
if [ "$#" -gt 0 ]; then
  install && npx -y pnpm@10 exec vitest run "$@"
else
  # The test command from README.md, under Node 22 (the install builds better-sqlite3 from source):
  install && npx -y pnpm@10 test
fi
log "done in $((SECONDS - started)) s"
