#!/usr/bin/env bash
# run.sh: sets everything up, then runs vkebm's main job on the shipped defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec build/vkebm demo "$@"
