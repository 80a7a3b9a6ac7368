#!/usr/bin/env bash
# Byte-identical output, before and after a change that should not change
# behaviour: runs one battery of `run`, `check`, `replay`, `compare` and
# `sweep` commands with each of two builds and diffs what they print.
#
#   bench/same-output.sh OLD_CHECKOUT NEW_CHECKOUT
#
# Each checkout must be built (`npm run build`). Builds before 2026-12-06 put
# wall time in `check`'s `seconds`: masked. Exit 0 when every output is the same.
set -uo pipefail
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

battery() { # $1 checkout, $2 output dir
  local root=$1 out=$2 cli="node $1/dist/src/cli/main.js" i=0
  mkdir -p "$out"
  one() { # a command line after the CLI; output to the next numbered file
    i=$((i + 1))
    (cd "$out" && $cli "$@" 2>&1 | sed -E 's/"seconds": ?[0-9.e+-]+/"seconds":X/; s/^(seconds|time)( +).*/\1\2X/; s/in [0-9.]+ ?s\b/in X s/g') >"$out/$(printf %03d $i)" 2>&1
    echo "$*" >>"$out/index"
  }
  for f in "$root"/scenarios/*.yaml; do
    n=$(basename "$f" .yaml)
    case $n in check-*) ;; *)
      one run "$n" --json
      one run "$n"
      one run "$n" --scheduler random --seed 3 --json
      ;;
    esac
  done
  one run exit-with-inflight --kernel free-at-mmput --json
  one run thread-pool --policy pasid_lifetime=unbind --json
  one run tlb-seed-001 --policy user_asid_flush=immediate --json
  one run tlb-user-mask-width --kernel user-pcid-mask-u16 --json
  one run process-lifecycle --trace trace.json
  for spec in "check-exit-inflight" "check-exit-inflight --kernel free-at-mmput" \
    "check-gp-fixup" "check-gp-fixup --kernel gp-fixup-irqs-on" \
    "check-ipi-in-bh" "check-ipi-in-bh --kernel ipi-in-bh" \
    "check-switching-flush" "check-switching-flush --kernel 83b0177a6c48" \
    "check-close-inflight" "check-close-inflight --kernel no-drain" \
    "check-user-mask-width --random 40" "check-user-mask-width --kernel user-pcid-mask-u16"; do
    # shellcheck disable=SC2086
    one check $spec --json --out cex.schedule
    # shellcheck disable=SC2086
    one check $spec --out cex2.schedule
    if [ -f "$out/cex.schedule" ]; then
      one replay cex.schedule --trace cex.trace.json --itf cex.itf.json
      (cd "$out" && cat cex.schedule cex.trace.json cex.itf.json >"$(printf %03d $i).files" 2>/dev/null
        rm -f cex.schedule cex2.schedule cex.trace.json cex.itf.json)
    fi
  done
  one check check-exit-inflight --por --json
  one check check-exit-inflight --kernel free-at-mmput --por --json
  one check check-gp-fixup --kernel gp-fixup-irqs-on --por --no-shortest --json
  one check check-switching-flush --por --json
  one check check-exit-inflight --preemption-bound 2 --json
  one check check-exit-inflight --bitstate 4 --json
  one check check-gp-fixup --kernel gp-fixup-irqs-on --random 50 --seed 5 --json
  one check check-gp-fixup --kernel gp-fixup-irqs-on --random 50 --pct 3 --depth 300 --json
  one check check-gp-fixup --random 20 --pct 2 --depth 500 --json
  one check check-exit-inflight --max-states 1000 --json
  # --workers: max_depth and where the first violation was found depend on
  # the threads' timing (docs/architecture.md); the rest must not.
  one check check-exit-inflight --workers 2 --json
  sed -i '/max_depth/d' "$out/$(printf %03d $i)"
  one check check-exit-inflight --kernel free-at-mmput --workers 2 --out w.schedule
  sed -i -E 's/found at [0-9]+, //' "$out/$(printf %03d $i)"
  one compare thread-pool --vary pasid_lifetime=mm,unbind,task-refcount,static --seeds 3
  one compare thread-pool --vary machine.cpus=2,4 --metrics context_switches,cycles_total --markdown
  one compare eager-vs-lazy --vary pasid_msr=gp-fixup,ipi,task-work,ctxsw-resync --seeds 2 --json
  one compare xstate-amx-switch --vary xstate_helper=lock-and-load,update,replace --seeds 2
  one compare tlb-global-asid --vary tlb_shootdown=ipi,invlpgb --metrics ipis,invlpgb,cycles_total
  cp "$root/sweeps/lifetimes.yaml" "$out/"
  one sweep lifetimes.yaml --workers 2
  # Before path ids were fixed (kernel/path.ts PATH_IDS), a sweep worker
  # numbered the kernel paths in its own import order, so its state_hash
  # differed from `run`'s for the same run; compare the rest.
  sed -i -E 's/"state_hash":"[0-9a-f]+",//' "$out/$(printf %03d $i)"
  one scenarios
  one schema
  one run no-such-scenario
  one check check-gp-fixup --preemption-bound x
}

battery "$old" "$work/old" &
battery "$new" "$work/new" &
wait
if diff -r "$work/old" "$work/new" >"$work/diff"; then
  echo "same output: $(wc -l <"$work/old/index") commands, byte-identical"
else
  head -60 "$work/diff"
  echo "DIFFERENT: $(grep -c '^diff' "$work/diff") files differ"
  exit 1
fi
