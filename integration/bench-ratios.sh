#!/usr/bin/env bash
# bench-ratios.sh OUT: berth/crun, berth/runc and berth-shim/conmon ratios from the tables that
# `make bench` had the shared benchmark scripts write under OUT/{lifecycle,memory,shim-memory}
# (and integration/interleaved.sh under OUT/interleaved),
# log throughput relative to cat (OUT/log-throughput) and the shim's log content check.
# Rows are named berth, runc, crun (lifecycle, memory) and berth, conmon (shim-memory).
set -euo pipefail
OUT=${1:?usage: bench-ratios.sh OUT}

ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN{ if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "-"; else printf "%.*f", d, a/b }'; }
# target VALUE OP LIMIT: the brief's targets, marked where a ratio is printed (OP is le or ge);
# VALUE unrounded (ratio A B 4), so 0.401 is not a 0.40 that meets <= 0.40
target() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN{
    if (v == "" || v == "-") { print "" ; exit }
    ok = (op == "le") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
    printf "  [target %s %s: %s]", (op == "le") ? "<=" : ">=", l, ok ? "met" : "NOT met" }'
}

# lifecycle table: runtime, "mean ± sd", median, ratio, |, loop/cyc ...
lc=$OUT/lifecycle/table.txt
if [ -f "$lc" ]; then
  col() { awk -v r="$1" -v f="$2" '$1 == r {print $f; exit}' "$lc"; }
  # fields: 2 cycle hf mean, 8 cycle loop; 15 run hf mean, 19 run loop
  echo "lifecycle of /bin/true, cycle = create+start+wait+delete, run = foreground run:"
  for other in crun runc; do
    echo "  berth/$other  cycle: hyperfine mean $(ratio "$(col berth 2)" "$(col "$other" 2)")   loop $(ratio "$(col berth 8)" "$(col "$other" 8)")"
    hf=$(ratio "$(col berth 15)" "$(col "$other" 15)") lp=$(ratio "$(col berth 19)" "$(col "$other" 19)")
    if [ "$other" = crun ]; then
      hf="$hf$(target "$(ratio "$(col berth 15)" "$(col crun 15)" 4)" le 0.40)"
      lp="$lp$(target "$(ratio "$(col berth 19)" "$(col crun 19)" 4)" le 0.40)"
    fi
    echo "  berth/$other  run:   hyperfine mean $hf   loop $lp"
  done
fi

# interleaved.sh's table: medians and per-iteration (paired) ratios, printed as they are
if [ -f "$OUT/interleaved/table.txt" ]; then
  echo "the same, interleaved (every runtime and the floor in each iteration):"
  grep -E 'interleaved|paired' "$OUT/interleaved/table.txt" | sed 's/^/  /'
  # issue #3's target is berth run <= 0.4x crun: the paired median of the run rows
  il=$(awk '/^run /{r=1} /^create/{r=0} r && $1 == "berth/crun" {print $5; exit}' "$OUT/interleaved/table.txt")
  [ -z "$il" ] || echo "  berth/crun run, paired median $il$(target "$il" le 0.40)"
fi

# memory table: runtime | bin MiB | strip | create init-RSS init-PSS start delete run | linkage
mt=$OUT/memory/table.txt
if [ -f "$mt" ]; then
  # medians: field 1 create, 3 init RSS, 5 init PSS (each value is "median (max)")
  mem() { awk -F'|' -v r="$1" -v i="$2" '{n=$1; gsub(/ /, "", n)} n == r {split($4, a, " "); print a[i]; exit}' "$mt"; }
  echo "memory (median):"
  for other in crun runc; do
    echo "  berth/$other  create peak RSS $(ratio "$(mem berth 1)" "$(mem "$other" 1)")   init RSS $(ratio "$(mem berth 3)" "$(mem "$other" 3)")   init PSS $(ratio "$(mem berth 5)" "$(mem "$other" 5)")"
  done
fi

# shim-memory table: monitor count | RSS/ctr PSS/ctr | totals | note
st=$OUT/shim-memory/table.txt
if [ -f "$st" ]; then
  echo "per-container monitor memory:"
  for count in $(awk -F'|' '{split($1, a, " ")} a[1] == "berth" {print a[2]}' "$st"); do
    # field 1 RSS, 2 PSS per container; the issue's idle target is RSS.
    per() { awk -F'|' -v m="$1" -v c="$count" -v i="$2" '{split($1, a, " ")} a[1] == m && a[2] == c {split($2, b, " "); print b[i]; exit}' "$st"; }
    echo "  berth-shim/conmon  $count containers: RSS per container $(ratio "$(per berth 1)" "$(per conmon 1)")$(target "$(ratio "$(per berth 1)" "$(per conmon 1)" 4)" le 0.50)   PSS per container $(ratio "$(per berth 2)" "$(per conmon 2)")"
  done
fi

# log-throughput table: row | wall s MiB/s | peak RSS MiB CPU s | file MiB lines
lt=$OUT/log-throughput/table.txt
if [ -f "$lt" ]; then
  lcol() { awk -F'|' -v r="$1" -v f="$2" -v i="$3" '{n=$1; gsub(/ /, "", n)} n == r {split($f, a, " "); print a[i]; exit}' "$lt"; }
  echo "container log throughput ($(awk 'NR==2{print $1, $2}' "$lt") CRI/k8s-file; MiB/s relative to cat writing the same stream):"
  for row in berth conmon containerd; do
    [ -n "$(lcol "$row" 2 2)" ] || continue
    r=$(ratio "$(lcol "$row" 2 2)" "$(lcol floor 2 2)") marks=""
    [ "$row" != berth ] || marks=$(target "$(ratio "$(lcol "$row" 2 2)" "$(lcol floor 2 2)" 4)" ge 0.90)
    echo "  $row/cat  $r   peak RSS $(lcol "$row" 3 1) MiB$marks"
  done
  # `cat` runs the host's coreutils yes|head; the containers run busybox's, which writes a
  # line per write(2). `direct` is that container writing straight into the file, with no
  # monitor: what a monitor could reach at best.
  if [ -n "$(lcol direct 2 2)" ]; then
    echo "  direct/cat  $(ratio "$(lcol direct 2 2)" "$(lcol floor 2 2)")   (the container's own rate, no monitor)"
    for row in berth conmon containerd; do
      [ -n "$(lcol "$row" 2 2)" ] || continue
      echo "  $row/direct  $(ratio "$(lcol "$row" 2 2)" "$(lcol direct 2 2)")"
    done
  fi
fi
if [ -f "$OUT/shim-log-check.txt" ]; then
  echo "conmon-mode log content check: $(tr '\n' ' ' < "$OUT/shim-log-check.txt")"
fi

# shim-v2-memory.txt: TYPE N RSS_KiB_total PSS_KiB_total SHIMS
sv=$OUT/shim-v2-memory/shim-v2-memory.txt
if [ -f "$sv" ]; then
  sv_col() { awk -v t="$1" -v i="$2" '$1 == t {printf "%.3f", $i / $5 / 1024; exit}' "$sv"; }
  b=io.containerd.berth.v2 r=io.containerd.runc.v2
  echo "containerd shim per container ($(awk -v t=$b '$1 == t {print $2; exit}' "$sv") idle containers, one shim each):"
  echo "  berth.v2 RSS $(sv_col $b 3) MiB, PSS $(sv_col $b 4) MiB; runc.v2 RSS $(sv_col $r 3) MiB, PSS $(sv_col $r 4) MiB"
  echo "  berth.v2/runc.v2  RSS $(ratio "$(sv_col $b 3)" "$(sv_col $r 3)")   PSS $(ratio "$(sv_col $b 4)" "$(sv_col $r 4)")"
fi
