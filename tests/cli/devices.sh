#!/usr/bin/env bash
# devices.sh: `vkebm devices` lists devices and the cpu backend; exits 0, or 77 without Vulkan.
# Usage: bash devices.sh <vkebm binary> <source dir>
set -u
bin=$1
out=$("$bin" devices 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "FAIL: exit $rc"; exit 1; fi
echo "$out" | grep -q '^cpu: ' || { echo "FAIL: no cpu line"; exit 1; }
if [ $rc -eq 77 ]; then exit 77; fi
echo "$out" | grep -q '^\* [0-9]*: ' || { echo "FAIL: no device marked as chosen"; exit 1; }
echo "$out" | grep -q 'subgroup [0-9]' || { echo "FAIL: no subgroup size"; exit 1; }
"$bin" devices --bogus >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: bad flag is not a usage error"; exit 1; }
"$bin" devices --help | grep -q '^usage: vkebm devices' || { echo "FAIL: --help"; exit 1; }
# an out-of-range VKEBM_DEVICE does not crash the listing
VKEBM_DEVICE=99 "$bin" devices >/dev/null 2>&1; rc=$?
[ $rc -eq 0 ] || [ $rc -eq 77 ] || { echo "FAIL: VKEBM_DEVICE=99 exit $rc"; exit 1; }
echo "devices: ok"
