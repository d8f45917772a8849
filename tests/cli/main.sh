# main.sh: the command-line frame. `vkebm --help`/`--version` print to stdout and exit 0; no
# command or an unknown one exits 2; every subcommand listed in --help answers its own --help on
# stdout with exit 0, and refuses an unknown flag with one line on stderr and exit 2 (naming the
# closest option when there is one).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

"$VKEBM" --help >"$T/out" 2>"$T/err" || fail "--help exits $?"
grep -q "^usage: vkebm" "$T/out" || fail "--help does not print usage on stdout"
"$VKEBM" --version >"$T/out" 2>&1 || fail "--version exits $?"
grep -Eq "^vkebm [0-9]+\.[0-9]+\.[0-9]+$" "$T/out" || fail "--version prints '$(cat "$T/out")'"
"$VKEBM" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no command: want exit 2"
"$VKEBM" frobnicate >/dev/null 2>"$T/err"
[ $? -eq 2 ] || fail "unknown command: want exit 2"
grep -q "unknown command 'frobnicate'" "$T/err" || fail "unknown command message: $(cat "$T/err")"

commands=$("$VKEBM" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}')
[ "$(echo "$commands" | wc -w)" -ge 8 ] || fail "--help lists too few commands: $commands"
for c in $commands; do
  "$VKEBM" "$c" --help >"$T/out" 2>"$T/err" || fail "$c --help exits $?"
  grep -qi "usage" "$T/out" || fail "$c --help prints no usage on stdout"
  "$VKEBM" "$c" --no-such-flag >"$T/out" 2>"$T/err"
  rc=$?
  [ $rc -eq 2 ] || fail "$c --no-such-flag: exit $rc, want 2"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$c --no-such-flag: want one line, got: $(cat "$T/err")"
done
# a near miss names the closest option
"$VKEBM" sample --exprr "color=red" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "did you mean --expr?" "$T/err" || fail "no suggestion for --exprr: $(cat "$T/err")"
"$VKEBM" train --labl-weight 1 >"$T/out" 2>"$T/err"
grep -q "did you mean --label-weight?" "$T/err" || fail "no suggestion for --labl-weight: $(cat "$T/err")"
echo "main.sh: ok ($(echo $commands | wc -w) commands)"
