#!/usr/bin/env bash
# Prune a delta chunk store (docs/updates.md, "Delta updates"): remove every chunk that none of the
# given delta bundles needs. Pass the delta bundle of every release a box may still be sent, newest
# first; boxes fetch only what their running slot lacks, so the store must keep every chunk of
# those releases' images (chunks the running slots have are never fetched, but a store cannot know
# which those are). Uses the signed index inside each bundle; -n only says what it would remove.
#
#   image/bundle/prune-store.sh [-n] STORE.castr KEEP.delta.seb...
set -euo pipefail
dry=
[ "${1:-}" = -n ] && { dry=-n; shift; }
[ $# -ge 2 ] && [ -d "$1" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
store=$1; shift
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
i=0
for b in "$@"; do
  i=$((i + 1))
  mkdir "$work/$i"
  tar -xf "$b" -C "$work/$i" index.caibx 2>/dev/null || { echo "prune-store: $b is not a delta bundle (no index.caibx)" >&2; exit 2; }
done
casync gc $dry -v --store="$store" "$work"/*/index.caibx
