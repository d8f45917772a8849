#!/usr/bin/env bash
# outputs.sh: what an output path may be (issue 11, item 1; include/vkebm/fileio.h). The atomic
# writer renames only over a missing path or a regular file: a character device (/dev/null,
# /dev/full) and a FIFO are written through and stay what they are, "-" is stdout, a read-only
# file and a dangling symlink are refused and left alone, a symlink keeps pointing at its
# (replaced) target, a replaced file keeps its mode, an empty path is one clear line, and a bad
# --gif path fails before sampling. Stale PATH.tmp.PID.* files of dead writers are removed.
# usage: bash outputs.sh VKEBM_BINARY SOURCE_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=sample
cd "$T"
S=(--analytic --expr color=red -n 1 --steps 2 --resolution 8 --seed 1 --quiet)

expect 0 "a plain output" -- "${S[@]}" -o a.png
[ -s a.png ] || fail "a.png not written"

# Character devices: nodes of our own in $T (a broken writer run as root would otherwise
# replace the machine's /dev/null). Without mknod rights, the real ones are safe to use: /dev is
# then not writable either.
null=/dev/null full=/dev/full
if mknod "$T/null" c 1 3 2>/dev/null && mknod "$T/full" c 1 7 2>/dev/null; then
  null=$T/null full=$T/full
elif [ -w /dev ]; then
  null="" full=""
  echo "outputs: cannot mknod but /dev is writable: skipping the device cases"
fi
if [ -n "$null" ]; then
  expect 0 "-o NULL-DEVICE" -- "${S[@]}" -o "$null"
  [ -c "$null" ] || fail "$null is no longer a character device"
  expect 1 "-o FULL-DEVICE" -- "${S[@]}" -o "$full"
  grep -q "No space left" "$T/err" || fail "$full: $(cat "$T/err")"
  [ -c "$full" ] || fail "$full is no longer a character device"
fi

expect 0 "-o - writes the PNG to stdout" -- "${S[@]}" -o -
cmp -s "$T/out" a.png || fail "-o - did not write the same PNG to stdout"

mkfifo ff
timeout 20 cat ff >from_fifo &
reader=$!
expect 0 "-o FIFO" -- "${S[@]}" -o ff
wait $reader
[ -p ff ] || fail "the FIFO was replaced"
cmp -s from_fifo a.png || fail "the FIFO's reader did not get the PNG"

cp a.png ro.png 2>/dev/null; chmod 444 ro.png
before=$(cksum <ro.png)
expect 1 "-o READ-ONLY" -- "${S[@]}" --seed 2 -o ro.png
grep -q "read-only" "$T/err" || fail "read-only: $(cat "$T/err")"
[ "$(cksum <ro.png)" = "$before" ] || fail "the read-only file was changed"
[ "$(stat -c %a ro.png)" = 444 ] || fail "the read-only file's mode changed"

cp a.png m.png && chmod 600 m.png
expect 0 "-o over a 0600 file" -- "${S[@]}" --seed 3 -o m.png
[ "$(stat -c %a m.png)" = 600 ] || fail "a replaced file's mode was reset to $(stat -c %a m.png)"

cp a.png target.png && ln -s target.png link.png
expect 0 "-o SYMLINK" -- "${S[@]}" --seed 4 -o link.png
[ -L link.png ] || fail "the symlink was replaced by a file"
cmp -s link.png target.png && ! cmp -s target.png a.png || fail "the symlink's target was not rewritten"

ln -s missing.png dangling.png
expect 1 "-o DANGLING-SYMLINK" -- "${S[@]}" -o dangling.png
[ -L dangling.png ] && [ ! -e missing.png ] || fail "the dangling symlink was followed or replaced"

mkdir d
expect 1 "-o DIRECTORY" -- "${S[@]}" -o d
expect 1 "-o ''" -- "${S[@]}" -o ''
grep -q "output path is empty" "$T/err" || fail "-o '': $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "-o '': more than one line"

expect 1 "--gif in a missing folder" -- "${S[@]}" -o g.png --gif nodir/x.gif
[ ! -e g.png ] || fail "the grid was written although --gif cannot be"

# a writer killed mid-write leaves PATH.tmp.PID.XXXXXX; the next write of PATH removes it
sh -c 'exit 0' & dead=$!; wait $dead
touch "a.png.tmp.$dead.AbCdEf" "a.png.tmp.$$.AbCdEf"
expect 0 "-o a.png again" -- "${S[@]}" -o a.png
[ ! -e "a.png.tmp.$dead.AbCdEf" ] || fail "a dead writer's temporary file was left"
[ -e "a.png.tmp.$$.AbCdEf" ] || fail "a live writer's temporary file was removed"
echo "outputs: ok"
