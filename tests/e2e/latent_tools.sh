#!/usr/bin/env bash
# distvae encode writes mu and logvar (N x latent) and labels; distvae interpolate writes a strip of
# --steps decoded images; training leaves interp.png and a report that embeds it.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup latent "$1" "$2"
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }
"$distvae" train "$src/configs/fmnist_vae_tiny.yaml" --run-dir run --quiet --set train.epochs=1 || exit 1
ck=run/checkpoints/ckpt-000001.h5
"$distvae" encode --checkpoint "$ck" --data 'data/fmnist-validation-*.h5' --out lat.h5 >/dev/null
header=$(h5dump -H lat.h5 | tr -s ' \n' ' ')
if grep -q 'DATASET "mu" { DATATYPE H5T_IEEE_F32LE DATASPACE SIMPLE { ( 10000, 8 )' <<<"$header" &&
   grep -q 'DATASET "logvar" { DATATYPE H5T_IEEE_F32LE DATASPACE SIMPLE { ( 10000, 8 )' <<<"$header" &&
   grep -q 'DATASET "labels"' <<<"$header"; then ok "encode: mu and logvar (10000, 8) and labels"
else bad "encode"; h5dump -H lat.h5 | head -20; fi
# Different images get different codes (an encoder ignoring its input would not).
rows=$(h5dump -d /mu -s "0,0" -c "2,8" -w 1000 lat.h5 | grep -E '^ *\(([01]),0\)' | sed 's/^ *([01],0)://')
if [[ $(wc -l <<<"$rows") -eq 2 && $(sed -n 1p <<<"$rows") != $(sed -n 2p <<<"$rows") ]]; then
  ok "encode: images 0 and 1 have different codes"
else bad "encode: rows $rows"; fi
"$distvae" interpolate --checkpoint "$ck" --data 'data/fmnist-validation-*.h5' --from 3 --to 7 --steps 6 --out strip.png >/dev/null
size=$(python3 -c "import struct; d=open('strip.png','rb').read(24); print(*struct.unpack('>II', d[16:24]))")
# 6 images of 28 px with 2 px padding: 6*28 + 7*2 = 182 wide, 28 + 2*2 = 32 high
[[ $size == "182 32" ]] && ok "interpolate: 182x32 strip" || bad "interpolate: strip is $size"
if [[ -s run/interp.png ]] && grep -q "latent interpolation" run/report.html; then ok "training writes interp.png and the report embeds it"
else bad "interp.png / report"; fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
