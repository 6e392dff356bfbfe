#!/usr/bin/env bash
# Lossy (default) versus exact hit recording; see compare-variant.sh.
# Usage: scripts/exact-recording.sh [TRACES_DIR]   (default ../shared/traces)
exec "$(dirname "$0")/compare-variant.sh" --exact-recording helios_exact "$@"
