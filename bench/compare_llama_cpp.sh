#!/usr/bin/env bash
# Lumen against llama.cpp on the same GGUF files, side by side: builds llama.cpp's llama-bench
# (CPU only, -march=native) from a source tree you give, then runs both on each model,
# interleaved (llama.cpp, Lumen, llama.cpp, Lumen, ...: ROUNDS rounds, one repetition each), and
# prints every round and a table of medians with the ratios Lumen / llama.cpp and the load
# averages seen. Nothing of llama.cpp is copied into Lumen; it is only built and run.
#
#   bench/compare_llama_cpp.sh LLAMA_CPP_SOURCE MODEL.gguf [MODEL.gguf...]
#
# Environment: THREADS ("1 2"), ROUNDS (3), PP (512 prompt tokens), TG (128 generated tokens),
# LUMEN_CLI (build/app/lumen-cli), LLAMA_BUILD (/tmp/llama-bench-build).
# Write the models with bench's lumen_make_model, e.g.
#   build/bench/lumen_make_model /tmp/tl-q4_0.gguf --preset tinyllama --type Q4_0
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
src=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")/.." && pwd)
lumen=${LUMEN_CLI:-$here/build/app/lumen-cli}
build=${LLAMA_BUILD:-/tmp/llama-bench-build}
threads=${THREADS:-"1 2"}
rounds=${ROUNDS:-3}
pp=${PP:-512}
tg=${TG:-128}

[[ -x $lumen ]] || { echo "no lumen-cli at $lumen (build Lumen first, or set LUMEN_CLI)" >&2; exit 1; }
[[ -f $src/examples/llama-bench/llama-bench.cpp || -f $src/tools/llama-bench/llama-bench.cpp ]] ||
    { echo "$src is not a llama.cpp source tree (no llama-bench.cpp)" >&2; exit 1; }
if [[ ! -x $build/bin/llama-bench ]]; then
    echo "building llama-bench in $build ..." >&2
    cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
    ninja -C "$build" llama-bench >/dev/null
fi
llama=$build/bin/llama-bench

load() { cut -d' ' -f1 /proc/loadavg; }

# llama-bench's CSV: the avg_ts column of its prompt row and its generation row.
run_llama() {  # model threads -> "pp_ts tg_ts"
    "$llama" -m "$1" -t "$2" -p "$pp" -n "$tg" -r 1 -o csv 2>/dev/null | awk -F, '
        NR == 1 { for (i = 1; i <= NF; ++i) { gsub(/"/, "", $i); col[$i] = i } next }
        { gsub(/"/, "") ; if ($col["n_prompt"] > 0 && $col["n_gen"] == 0) p = $col["avg_ts"]; if ($col["n_gen"] > 0 && $col["n_prompt"] == 0) g = $col["avg_ts"] }
        END { printf "%s %s\n", p, g }'
}

# lumen-cli bench's table: the row of this thread count, prefill and decode means.
run_lumen() {  # model threads -> "pp_ts tg_ts"
    "$lumen" bench --model "$1" -t "$2" -p "$pp" -n "$tg" -r 1 2>/dev/null | awk -v t="$2" '
        $1 == t && $3 == "+-" { print $2, $8; exit }'
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "llama-bench: $("$llama" --help >/dev/null 2>&1 && echo "$llama") ($(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "source tree $src"))"
echo "lumen-cli: $lumen ($("$lumen" info 2>/dev/null | awk '/kernels:/ { print $2 }') kernels)"
echo "pp$pp and tg$tg, $rounds rounds, threads: $threads; $(nproc) CPUs: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo
printf "%-28s %3s %5s | %10s %10s | %10s %10s | %5s\n" model thr round "llama pp" "lumen pp" "llama tg" "lumen tg" load
for model in "$@"; do
    [[ -f $model ]] || { echo "no model file $model" >&2; exit 1; }
    for ((r = 1; r <= rounds; ++r)); do
        for t in $threads; do
            l0=$(load)
            read -r lp lg < <(run_llama "$model" "$t")
            read -r mp mg < <(run_lumen "$model" "$t")
            l1=$(load)
            printf "%-28s %3s %5s | %10.2f %10.2f | %10.2f %10.2f | %s-%s\n" "$(basename "$model")" "$t" "$r" "${lp:-0}" "${mp:-0}" "${lg:-0}" "${mg:-0}" "$l0" "$l1"
            echo "$(basename "$model") $t ${lp:-0} ${mp:-0} ${lg:-0} ${mg:-0} $l0 $l1" >>"$results"
        done
    done
done

echo
echo "medians over the rounds; ratio = Lumen / llama.cpp (above 1: Lumen is faster)"
printf "%-28s %3s | %10s %10s %6s | %10s %10s %6s | %s\n" model thr "llama pp" "lumen pp" ratio "llama tg" "lumen tg" ratio "load seen"
awk '
    function median(list,    n, a, i, j, x) {
        n = split(list, a, " ")
        for (i = 2; i <= n; ++i) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; --j) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        k = $1 SUBSEP $2
        if (!(k in seen)) { order[++count] = k; seen[k] = 1; lo[k] = $7; hi[k] = $7 }
        lp[k] = lp[k] " " $3; mp[k] = mp[k] " " $4; lg[k] = lg[k] " " $5; mg[k] = mg[k] " " $6
        for (i = 7; i <= 8; ++i) { if ($i + 0 < lo[k] + 0) lo[k] = $i; if ($i + 0 > hi[k] + 0) hi[k] = $i }
    }
    END {
        for (c = 1; c <= count; ++c) {
            k = order[c]; split(k, key, SUBSEP)
            a = median(lp[k]); b = median(mp[k]); g = median(lg[k]); h = median(mg[k])
            printf "%-28s %3s | %10.2f %10.2f %6.2f | %10.2f %10.2f %6.2f | %s-%s\n", key[1], key[2], a, b, (a > 0 ? b / a : 0), g, h, (g > 0 ? h / g : 0), lo[k], hi[k]
        }
    }' "$results"
