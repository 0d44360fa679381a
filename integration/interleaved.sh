#!/usr/bin/env bash
# interleaved.sh [-n N] [-o DIR] RUNTIME...   RUNTIME = PATH or NAME=PATH; the first is compared
#
# Foreground `run` and the create/start/wait/delete cycle of /bin/true, like lifecycle.sh, but
# interleaved: each iteration times every runtime once, then the floor (../shared/bench/floor
# -r rootfs), so all rows share the same minutes. On this host the hypervisor's steal changes
# within minutes and moves crun's `run` between ~6 and ~17 ms; lifecycle.sh measures one row
# after the other, so such a change between rows skews its ratios. Here each ratio is the
# median of per-iteration ratios (first runtime / other, measured within the same ~50 ms).
# Same environment as the shared scripts (lib.sh): subreaper, private mount namespace, cgroup2
# hidden on the hybrid host, own bundles and state dirs, everything removed on exit.
set -euo pipefail
BENCH=${BENCH:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}
# lib.sh re-executes "$0"; keep its paths absolute.
source "$BENCH/lib.sh"
bench_reexec "$@"

N=200 OUT=
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
parse_runtimes "$@"
[ ${#RT_NAMES[@]} -ge 2 ] || die "give at least two runtimes (the first is compared to the rest)"
WORK=${WORK:-/tmp/berth-bench/interleaved}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
ID=bench-il-$$

cleanup() {
  local i
  for i in "${!RT_NAMES[@]}"; do cleanup_state "${RT_PATHS[$i]}" "$WORK/state/${RT_NAMES[$i]}"; done
  cleanup_cgroups
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in "${!RT_NAMES[@]}"; do
  name=${RT_NAMES[$i]}
  BUNDLE_CGROUPS_PATH=/$CG_PARENT/$name-il BUNDLE_HOSTNAME=bench \
    "$BENCH_DIR/make-bundle.sh" "$WORK/bundle-$name" /bin/true >/dev/null
  cleanup_state "${RT_PATHS[$i]}" "$WORK/state/$name"
  mkdir -p "$WORK/state/$name"
done
"$BENCH_DIR/make-bundle.sh" "$WORK/bundle-floor" /bin/true >/dev/null

us() { echo $(( ${1/./} - ${2/./} )); }

# one iteration of KIND (run|cycle) for runtime index $1 -> microseconds on stdout
once() {
  local kind=$1 i=$2 n=$3 rt=${RT_PATHS[$2]} name=${RT_NAMES[$2]} t0 t1
  local root=$WORK/state/$name bundle=$WORK/bundle-$name id=$ID-$name-$n
  t0=$EPOCHREALTIME
  # errexit does not reach into $(...): every failure returns by hand.
  if [ "$kind" = run ]; then
    "$rt" --root "$root" run --bundle "$bundle" "$id" >/dev/null || return 1
  else
    "$rt" --root "$root" create --bundle "$bundle" --pid-file "$root/pid" "$id" >/dev/null &&
      "$rt" --root "$root" start "$id" && "$BT" pidwait "$root/pid" 10000 &&
      "$rt" --root "$root" delete "$id" || return 1
  fi
  t1=$EPOCHREALTIME
  us "$t1" "$t0"
}

machine_header > "$OUT/header.txt"
for kind in run cycle; do
  csv=$OUT/$kind.csv
  (IFS=,; echo "${RT_NAMES[*]},floor") > "$csv"
  log "$kind: $N interleaved iterations"
  for ((n = 0; n < N; n++)); do
    row=()
    for i in "${!RT_NAMES[@]}"; do
      t=$(once "$kind" "$i" "$n") || die "${RT_NAMES[$i]}: $kind failed"
      row+=("$t")
    done
    t0=$EPOCHREALTIME
    "$FLOOR" -r "$WORK/bundle-floor/rootfs" /bin/true >/dev/null
    t1=$EPOCHREALTIME
    row+=("$(us "$t1" "$t0")")
    (IFS=,; echo "${row[*]}") >> "$csv"
  done
done

# medians per column and paired ratios (column 1 / column k, per iteration)
summary() {
  awk -F, -v kind="$1" '
    NR == 1 { for (k = 1; k <= NF; k++) name[k] = $k; nf = NF; next }
    { n++; for (k = 1; k <= nf; k++) v[k, n] = $k / 1000
      for (k = 2; k <= nf; k++) r[k, n] = $1 / $k }
    function med(arr, k,   i, a) { for (i = 1; i <= n; i++) a[i] = arr[k, i]; asort(a); return a[int((n + 1) / 2)] }
    function q(arr, k, p,   i, a, j) { for (i = 1; i <= n; i++) a[i] = arr[k, i]; asort(a); j = int(n * p + 0.5); return a[j < 1 ? 1 : (j > n ? n : j)] }
    END {
      printf "%s (%d interleaved iterations), ms: median [p25 p75]\n", kind, n
      for (k = 1; k <= nf; k++) printf "  %-8s %6.2f [%.2f %.2f]\n", name[k], med(v, k), q(v, k, 0.25), q(v, k, 0.75)
      for (k = 2; k <= nf; k++) printf "  %s/%s  paired ratio median %.2f [p25 %.2f p75 %.2f]\n", name[1], name[k], med(r, k), q(r, k, 0.25), q(r, k, 0.75)
    }' "$OUT/$2.csv"
}
{ summary run run; summary "create+start+wait+delete" cycle; echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee "$OUT/table.txt"
