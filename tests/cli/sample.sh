#!/usr/bin/env bash
# sample.sh: `vkebm sample` end to end on the analytic concepts (cpu backend): the issue's
# example expressions sample; the same command writes the same bytes; --from reproduces a PNG
# pixel for pixel; --explain prints the tree; malformed expressions exit 2 and write nothing;
# --frames and --gif write what they promise.
# usage: bash sample.sh VKEBM_BINARY SOURCE_DIR
set -u
V="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

common=(--analytic --resolution 16 -n 4 --steps 40 --quiet)
i=0
for e in "shape=cube AND color=red" "color=red OR color=blue" "shape=sphere AND NOT color=red" \
         "pos=(-0.5,0) AND pos=(0.5,0)" "(shape=cube AND color=red) OR (shape=sphere AND color=blue)" \
         "2*color=red AND size=0.6"; do
  i=$((i+1))
  "$V" sample "${common[@]}" --expr "$e" --seed 7 -o "ex$i.png"
  check "example '$e' samples" "[ \$? -eq 0 ] && [ -s ex$i.png ]"
done

"$V" sample "${common[@]}" --expr "color=red AND pos=(0.3,-0.5)" --seed 11 -o a.png
"$V" sample "${common[@]}" --expr "color=red AND pos=(0.3,-0.5)" --seed 11 -o b.png
check "same command, same bytes" "cmp -s a.png b.png"
"$V" sample --from a.png -o c.png --quiet
check "--from reproduces the PNG byte for byte" "cmp -s a.png c.png"
"$V" sample "${common[@]}" --expr "color=red AND pos=(0.3,-0.5)" --seed 12 -o d.png
check "another seed, another image" "[ -s d.png ] && ! cmp -s a.png d.png"
"$V" sample --analytic --resolution 16 -n 4 --steps 40 --sampler mala --expr "color=red OR[1] color=blue" --seed 3 -o m.png 2> m.log
check "mala reports its acceptance" "grep -q 'acceptance' m.log"
"$V" sample --from m.png -o m2.png --quiet
check "--from reproduces a mala run" "cmp -s m.png m2.png"
"$V" sample --from ex1.png --expr "color=red" -o x.png 2>/dev/null
check "--from with sampling options is a usage error" "[ \$? -eq 2 ] && [ ! -e x.png ]"

out=$("$V" sample --analytic --expr "(shape=cube AND color=red) OR[0.5] NOT[0.2] size=0.5 AND shape=sphere" --explain)
check "--explain prints the tree and the energy" "[ \$? -eq 0 ] && echo \"\$out\" | grep -q 'logsumexp' && echo \"\$out\" | grep -q 'E(x | shape=cube)'"

bad=("" "color=red AND" "NOT color=red" "(color=red" "color=red)" "colr=red" "color=redd" "pos=(0.3)" \
     "size=7" "2 color=red" "color=red OR[0] color=blue")
for e in "${bad[@]}"; do
  "$V" sample --analytic --expr "$e" -o bad.png 2> err.txt
  rc=$?
  check "bad '$e' exits 2 with a message and writes nothing" "[ $rc -eq 2 ] && [ -s err.txt ] && [ ! -e bad.png ]"
done
"$V" sample --analytic --expr "colr=red" -o bad.png 2> err.txt
check "unknown concept lists the valid ones" "grep -q 'color, position, size, shape' err.txt"
"$V" sample --analytic --expr "color=redd" -o bad.png 2> err.txt
check "unknown value lists the valid ones" "grep -q 'red, green, blue' err.txt"
"$V" sample --analytic --expr "color=red AND AND shape=cube" -o bad.png 2> err.txt
check "the error points at the position" "grep -q '^                ^' err.txt"

"$V" sample "${common[@]}" --expr "color=green AND size=0.6" --seed 5 --steps 10 --every 5 --frames fr --gif g.gif -o f.png
check "--frames writes numbered PNGs" "[ -s fr/step_0005.png ] && [ -s fr/step_0010.png ]"
check "--gif writes a looping GIF" "head -c 6 g.gif | grep -q GIF89a && grep -q NETSCAPE2.0 g.gif"
"$V" sample "${common[@]}" --expr "color=green" --seed 5 --nrow 2 --padding 0 -o grid.png
check "--nrow/--padding shape the grid (2x2 of 16px = 32x32)" \
  "python3 -c \"import struct,sys; d=open('grid.png','rb').read(); w,h=struct.unpack('>II',d[16:24]); sys.exit(0 if (w,h)==(32,32) else 1)\""
"$V" sample "${common[@]}" --expr "color=red AND pos=(0.5,0.5)" --seed 1 -n 1 --nrow 1 --padding 0 -o start.png
"$V" sample "${common[@]}" --expr "color=red AND pos=(0.5,0.5)" --init start.png --steps 0 --seed 1 -n 2 --padding 0 -o edit0.png
check "--init starts every chain from the image (0 steps: the image itself, twice)" \
  "python3 -c \"import struct,sys,zlib; d=open('edit0.png','rb').read(); w,h=struct.unpack('>II',d[16:24]); sys.exit(0 if (w,h)==(32,16) else 1)\""
"$V" sample "${common[@]}" --expr "color=blue AND pos=(0.5,0.5)" --init start.png --seed 4 -o edit.png
check "--init edits and reproduces with --from" "[ -s edit.png ] && $V sample --from edit.png -o edit2.png --quiet && cmp -s edit.png edit2.png"
"$V" sample "${common[@]}" --expr "color=red" --init grid.png -o bad.png 2>/dev/null
check "--init of the wrong size is refused" "[ \$? -eq 2 ] && [ ! -e bad.png ]"
"$V" sample "${common[@]}" --expr "color=red" --seed 2 -o s1.png && "$V" sample "${common[@]}" --expr "color=red" --seed 2 --scale 3 -o s3.png
dims() { python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print('%dx%d' % struct.unpack('>II', d[16:24]))" "$1"; }
check "--scale 3 makes the grid 3 times larger" "[ \"\$(dims s3.png)\" = \"\$(( \$(dims s1.png | cut -dx -f1) * 3 ))x\$(( \$(dims s1.png | cut -dx -f2) * 3 ))\" ]"
check "--scale is recorded: --from gives the same bytes" "$V sample --from s3.png -o s3b.png --quiet && cmp -s s3.png s3b.png"
"$V" sample "${common[@]}" --expr "color=red AND shape=cube" --seed 2 --json --save-each each -o j.png > j.json
check "--json prints every chain's composed and per-term energies" "/usr/bin/python3 -c \"import json; d=json.load(open('j.json')); assert d['n']==4 and len(d['energy'])==4 and sorted(d['terms'])==['color=red','shape=cube'] and all(len(v)==4 for v in d['terms'].values())\""
check "--save-each writes a PNG per sample and the floats as .npy" "[ -s each/sample_003.png ] && /usr/bin/python3 -c \"import numpy as np; a=np.load('each/samples.npy'); assert a.shape==(4,3,16,16) and a.dtype==np.float32 and 0<=a.min() and a.max()<=1\""
"$V" sample "${common[@]}" --expr "color=red" --device nine -o bad.png 2>/dev/null
check "--device must be an index" "[ \$? -eq 2 ] && [ ! -e bad.png ]"
"$V" sample "${common[@]}" --backend vulkan --sampler mala --expr "color=red OR color=blue" --seed 8 -o v1.png 2>/dev/null
vrc=$?
if [ $vrc -eq 77 ]; then
  echo "skip: no Vulkan device for the --backend vulkan reproduction check"
else
  "$V" sample --from v1.png -o v2.png --quiet
  check "a vulkan run reproduces with --from on its recorded backend" "[ $vrc -eq 0 ] && cmp -s v1.png v2.png"
fi
# the expression as the one positional argument means --expr; both, or two, are usage errors
"$V" sample "color=red" "${common[@]}" --backend cpu --seed 4 -o pos.png
prc=$?
"$V" sample --expr "color=red" "${common[@]}" --backend cpu --seed 4 -o opt.png
check "a positional expression is --expr" "[ $prc -eq 0 ] && cmp -s pos.png opt.png"
"$V" sample --expr "color=red" "shape=cube" "${common[@]}" -o twice.png 2>/dev/null
check "an expression given twice is a usage error" "[ $? -eq 2 ] && [ ! -e twice.png ]"
# a missing models folder is an error, never the analytic concepts
"$V" sample "color=red" --models "$T/no-such-models" -n 2 --steps 2 -o miss.png --quiet 2>/dev/null
check "a missing --models folder is an error" "[ $? -eq 1 ] && [ ! -e miss.png ]"
exit $fail
