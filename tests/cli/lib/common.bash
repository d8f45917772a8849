# common.bash: the preamble the CLI test scripts share. It sits in tests/cli/lib/ so that
# tests/tests.cmake (every tests/cli/*.sh is a test) does not take it for one. A script starts
#   set -u
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
# and then has:
#   VKEBM SRC BUILD  the vkebm binary ($1), the source tree ($2), the binary's folder (the test
#                    programs, e.g. test_net_export, are built next to it)
#   T                a fresh temporary folder, removed when the script exits
#   PY               /usr/bin/python3 when present, else python3 (need_python picks a better one)
#   fail MESSAGE     prints "FAIL: MESSAGE" and exits 1
#   expect CODE WHAT -- ARGS...
#                    runs `vkebm $CLI_COMMAND ARGS...` (CLI_COMMAND set by the script), stdout to
#                    $T/out and stderr to $T/err; fails unless it exits with CODE
#   need_python WHAT STATEMENT
#                    sets PY to a python3 that runs STATEMENT (e.g. "import numpy"), else skips
#                    the test (exit 77) saying "no python3 with WHAT"
VKEBM=$1
SRC=${2:-}
BUILD=$(dirname "$VKEBM")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

fail() { echo "FAIL: $*"; exit 1; }

expect() { # expect CODE WHAT -- ARGS...
  local want=$1 what=$2
  shift 3
  "$VKEBM" "$CLI_COMMAND" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, want $want ($(cat "$T/err"))"
}

need_python() { # need_python WHAT STATEMENT
  local p
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c "$2" 2>/dev/null; then PY=$p; return 0; fi
  done
  echo "no python3 with $1: skipping"
  exit 77
}
