#!/usr/bin/env bash
# Outpost's benchmarks against the tools a box would otherwise use, all from
# one run so the ratios compare figures taken minutes apart on one machine:
#
#   a. range serving: the portal's media route vs nginx (and a minimal Go
#      http.ServeContent server, the net/http floor), 50 clients, 256 KiB
#      ranges, server pinned to core 0, load generator to core 1;
#   b. import hashing: `outpost content import` and its hashing path vs
#      sha256sum and openssl over 1 GiB;
#   c. cold start and memory with a 10,000-item catalog;
#   d. sync: bytes on the wire for four course updates vs `rsync -az`, and
#      hub CPU per GB served;
#   e. scale: item and course pages of courses of 1,000, 10,000 and 50,000
#      HTML pages (compressed as browsers ask, and not; and first views),
#      outpost vs kiwix-serve serving a ZIM of the same pages, and the peak
#      memory of importing each course.
# BENCH_ONLY=a (or e) runs that section alone; BENCH_DURATION sets each load
# run's length; BENCH_SCALE_SIZES the course sizes of section e.
# BENCH_BASELINE=/path/to/an/older/outpost adds that build to section a's
# rotation, to compare a change with what it replaces in the same run.
#
# Run it with `make bench` (which builds bin/outpost and installs nginx-light
# first). It needs two cores, uses only 127.0.0.1, installs nothing, cleans
# up its servers and files on exit, and takes about a quarter of an hour.
# docs/BENCHMARKS.md explains the figures and records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CGO_ENABLED=0
OUTPOST=${BENCH_OUTPOST:-$PWD/bin/outpost} # BENCH_OUTPOST: another build, for before/after runs
DURATION=${BENCH_DURATION:-10s} # per load-test run
for tool in nginx taskset sha256sum openssl curl go rsync kiwix-serve zimwriterfs; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing; run 'make bench'" >&2; exit 1; }
done
[ -x "$OUTPOST" ] || { echo "bench: $OUTPOST is missing; run 'make build'" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
  echo "bench: needs two cores (server on one, load generator on the other)" >&2
  exit 1
fi

WORK=$(mktemp -d /tmp/outpost-bench.XXXXXX)
# nginx's workers drop root privileges and must read the files.
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
section() { printf '\n== %s (at %ds)\n' "$1" $(($(date +%s) - T0)); }
now() { date +%s.%N; }
# jget FILE KEY: a number from loadtest's --json output.
jget() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1" | head -1; }
# ticks PID: CPU time (user+system, in clock ticks) a process has used.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# waitup URL: until it answers (bounded: 10 s).
waitup() {
  local i
  for i in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2
  return 1
}
warm() { find "$@" -type f -exec cat {} + >/dev/null; }
# quiet LOG CMD...: run CMD with its output in LOG, shown only if it fails.
quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { echo "bench: failed: $*" >&2; cat "$log" >&2; exit 1; }
}

echo "Outpost benchmarks"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average at start; other work on the machine skews every figure)"
echo "tools:   $("$OUTPOST" --version), $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version | cut -d' ' -f1-2), $(sha256sum --version | head -1), $(kiwix-serve --version 2>&1 | grep -m1 kiwix-tools), $(zimwriterfs --version 2>&1 | grep -m1 zim-tools)"

go build -trimpath -o "$WORK/benchtool" ./scripts/benchtool
BT=$WORK/benchtool

###############################################################################
# run_pages NAME PID BASE URLFILE [ARGS...]: one page-load run of DURATION
# against one server, its figures kept as NAME.txt and the server's CPU
# seconds as NAME.cpu; ARGS go to benchtool pageload (-gzip).
run_pages() {
  local name=$1 pid=$2 base=$3 urls=$4 t0 t1
  shift 4
  t0=$(ticks "$pid")
  taskset -c 1 "$BT" pageload -base "$base" -urls "$urls" -clients 8 -duration "$DURATION" "$@" >"$name.txt" 2>"$name.err" ||
    { echo "bench: page load $name failed:" >&2; cat "$name.err" >&2; exit 1; }
  t1=$(ticks "$pid")
  awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.2f\n", (b - a) / hz }' >"$name.cpu"
}
# mknode DIR: a new node to import into (verbs other than serve, hub and
# demo refuse a directory that is not one). A BENCH_OUTPOST build from
# before `outpost init` creates it on import instead.
mknode() {
  if "$OUTPOST" init --help >/dev/null 2>&1; then
    quiet "$1.init.log" "$OUTPOST" init --data "$1"
  fi
}
# kv FILE KEY: a value of benchtool's "key value" output.
kv() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# section_e: the scale comparison (its own function so BENCH_ONLY=e can run
# it alone, before the long sections).
section_e() {
  section "e. scale: pages of 1,000 / 10,000 / 50,000-page courses vs kiwix-serve; import memory"
  local E=$WORK/scale n d OP KP OPID KPID round kind enc c flag srv base pid t0
  local sizes=${BENCH_SCALE_SIZES:-1000 10000 50000}
  # page kind:encoding, each run against both servers in each round
  local E_CASES="item:gzip item:identity course:gzip course:identity first:gzip"
  echo "load at start of e: $(cut -d' ' -f1-3 /proc/loadavg)"
  for n in $sizes; do
    d=$E/$n
    mkdir -p "$d"
    "$BT" pagespack "$d/pack" bench-pages "$n"
    warm "$d/pack"
    mknode "$d/data"
    "$BT" peakrss "$OUTPOST" content import --data "$d/data" "$d/pack" >"$d/import.txt" 2>"$d/import.log" ||
      { echo "bench: import of $n pages failed:" >&2; cat "$d/import.log" >&2; exit 1; }
    stat -c %s "$d/pack/manifest.json" >"$d/manifest.bytes"
    "$BT" zimsrc "$d/pack" "$d/zimsrc" "$n"
    t0=$(now)
    # zimwriterfs defaults (full-text index, 4 threads, 2 MB clusters);
    # only the metadata it requires is given.
    quiet "$d/zim.log" zimwriterfs --welcome=index.html --illustration=illustration.png --language=eng \
      --title="Benchmark pages ($n)" --description="Generated HTML pages" --creator=Outpost --publisher=Outpost \
      "$d/zimsrc" "$d/bench-$n.zim"
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }' >"$d/zim.s"
    rm -rf "$d/zimsrc" "$d/pack"
    warm "$d/data" "$d/bench-$n.zim"
    "$BT" scaleurls "$d" bench-pages "bench-$n" "$n" 2000

    OP=$("$BT" freeport)
    taskset -c 0 "$OUTPOST" serve --data "$d/data" --listen "127.0.0.1:$OP" 2>"$d/outpost.log" &
    OPID=$!
    PIDS+=("$OPID")
    KP=$("$BT" freeport)
    # As its users run it: defaults (4 threads), one ZIM.
    taskset -c 0 kiwix-serve --address 127.0.0.1 --port "$KP" "$d/bench-$n.zim" >"$d/kiwix.log" 2>&1 &
    KPID=$!
    PIDS+=("$KPID")
    waitup "http://127.0.0.1:$OP/c/bench-pages"
    waitup "http://127.0.0.1:$KP/bench-$n/index.html"
    # A short warm-up of each, so neither pays for first-touch caches.
    for srv in outpost kiwix; do
      base=http://127.0.0.1:$OP
      [ "$srv" = kiwix ] && base=http://127.0.0.1:$KP
      taskset -c 1 "$BT" pageload -base "$base" -urls "$d/$srv-item.txt" -clients 8 -duration 2s >/dev/null
    done
    # Back to back and alternating, so the machine's other load hits both;
    # each page as browsers ask for it (gzip) and uncompressed; first views
    # as browsers ask.
    for round in 1 2; do
      for c in $E_CASES; do
        kind=${c%:*} enc=${c#*:}
        flag=()
        [ "$enc" = gzip ] && flag=(-gzip)
        run_pages "$d/outpost-$kind-$enc-$round" "$OPID" "http://127.0.0.1:$OP" "$d/outpost-$kind.txt" "${flag[@]}"
        run_pages "$d/kiwix-$kind-$enc-$round" "$KPID" "http://127.0.0.1:$KP" "$d/kiwix-$kind.txt" "${flag[@]}"
      done
    done
    kill -TERM "$OPID" "$KPID" 2>/dev/null || true
    wait "$OPID" "$KPID" 2>/dev/null || true
    rm -rf "$d/data" "$d/bench-$n.zim"
  done
  echo "load at end of e: $(cut -d' ' -f1-3 /proc/loadavg)"

  printf '\nCourses of N generated HTML pages (samplecourse.WritePages, ~2.5 KB each, 20 a lesson); the same pages\n'
  printf 'packed by zimwriterfs (defaults) for kiwix-serve (defaults). 8 keep-alive clients, %s a run, server on core 0,\n' "$DURATION"
  printf 'load generator (benchtool pageload) on core 1. item: the same 2,000 random pages for both (outpost: the item\n'
  printf 'page /c/COURSE/i/ITEM; kiwix-serve: the article /BOOK/PATH); course: every page of the portal'"'"'s paged listing\n'
  printf '(200 items each) vs kiwix-serve'"'"'s welcome page (a list of the first 200 pages); first: every item page in\n'
  printf 'course order, the 8 clients starting evenly spaced, so that from 10,000 pages on most views are a page'"'"'s first.\n'
  printf 'enc: gzip asks as browsers do (Accept-Encoding: gzip, deflate, br; Accept-Language: en-US,en;q=0.9), identity\n'
  printf 'asks for no compression and no language.\n'
  printf 'body B: bytes of the body as sent; hdr B: bytes of the response headers.\n\n'
  printf '| pages | page | enc | run | server | pages/s | p50 ms | p95 ms | p99 ms | body B | hdr B | server CPU | pages/s vs kiwix-serve |\n'
  printf '|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for n in $sizes; do
    for c in $E_CASES; do
      kind=${c%:*} enc=${c#*:}
      for round in 1 2; do
        for srv in outpost kiwix; do
          f=$E/$n/$srv-$kind-$enc-$round.txt
          label=$srv
          [ "$srv" = kiwix ] && label=kiwix-serve
          awk -v n="$n" -v k="$kind" -v enc="$enc" -v r="$round" -v l="$label" -v pps="$(kv "$f" pages_per_s)" -v p50="$(kv "$f" p50_ms)" \
            -v p95="$(kv "$f" p95_ms)" -v p99="$(kv "$f" p99_ms)" -v b="$(kv "$f" bytes_per_page)" -v hb="$(kv "$f" header_bytes_per_page)" -v s="$(kv "$f" seconds)" \
            -v cpu="$(cat "$E/$n/$srv-$kind-$enc-$round.cpu")" -v base="$(kv "$E/$n/kiwix-$kind-$enc-$round.txt" pages_per_s)" -v e="$(kv "$f" errors)" \
            'BEGIN { printf "| %d | %s | %s | %d | %s | %.0f | %.2f | %.2f | %.2f | %d | %d | %.0f%% | %.2fx |\n", n, k, enc, r, l, pps, p50, p95, p99, b, hb, 100*cpu/s, pps/base; if (e > 0) printf "(%s: %d errors)\n", l, e }'
        done
      done
    done
  done
  echo
  for c in $E_CASES; do
    kind=${c%:*} enc=${c#*:}
    for n in $sizes; do
      awk -v n="$n" -v k="$kind" -v enc="$enc" -v o1="$(kv "$E/$n/outpost-$kind-$enc-1.txt" pages_per_s)" -v o2="$(kv "$E/$n/outpost-$kind-$enc-2.txt" pages_per_s)" \
        -v k1="$(kv "$E/$n/kiwix-$kind-$enc-1.txt" pages_per_s)" -v k2="$(kv "$E/$n/kiwix-$kind-$enc-2.txt" pages_per_s)" \
        -v ob="$(kv "$E/$n/outpost-$kind-$enc-1.txt" bytes_per_page)" -v kb="$(kv "$E/$n/kiwix-$kind-$enc-1.txt" bytes_per_page)" \
        -v oh="$(kv "$E/$n/outpost-$kind-$enc-1.txt" header_bytes_per_page)" -v kh="$(kv "$E/$n/kiwix-$kind-$enc-1.txt" header_bytes_per_page)" \
        'BEGIN { printf "%s pages (%s), %d-page course: outpost %.0f pages/s, kiwix-serve %.0f pages/s, outpost/kiwix-serve %.2fx (mean of both rounds); %d vs %d bytes a page with headers\n", k, enc, n, (o1+o2)/2, (k1+k2)/2, (o1/k1 + o2/k2)/2, ob+oh, kb+kh }'
    done
  done
  printf '\nImport of each course (outpost content import, a folder pack, page cache warm); peak RSS is the\n'
  printf 'kernel'"'"'s ru_maxrss of the process. zimwriterfs building the ZIM of the same pages, for scale.\n\n'
  printf '| pages | manifest.json | import s | import peak RSS | zimwriterfs s |\n|---:|---:|---:|---:|---:|\n'
  for n in $sizes; do
    awk -v n="$n" -v mb="$(cat "$E/$n/manifest.bytes")" -v s="$(kv "$E/$n/import.txt" seconds)" -v k="$(kv "$E/$n/import.txt" peak_rss_kib)" -v z="$(cat "$E/$n/zim.s")" \
      'BEGIN { printf "| %d | %.1f MB | %.1f | %.1f MiB | %.1f |\n", n, mb/1e6, s, k/1024, z }'
  done
}

###############################################################################
# BENCH_ONLY=e: the scale comparison alone.
if [ "${BENCH_ONLY:-}" = e ]; then section_e; section "done"; exit 0; fi

###############################################################################
section "a. range serving"
A=$WORK/range
mkdir -p "$A/nginx"
"$BT" mediapack "$A/pack" bench-media 6 $((32 << 20)) >"$A/files.txt"
mknode "$A/data"
quiet "$A/import.log" "$OUTPOST" content import --data "$A/data" "$A/pack"
warm "$A/pack" "$A/data/store/objects"

NGINX_PORT=$("$BT" freeport)
cat >"$A/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $A/nginx/nginx.pid;
error_log $A/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  # As many requests per connection as the Go servers allow (nginx's
  # default closes a connection after 1000).
  keepalive_requests 1000000;
  client_body_temp_path $A/nginx/body;
  proxy_temp_path $A/nginx/proxy;
  fastcgi_temp_path $A/nginx/fastcgi;
  uwsgi_temp_path $A/nginx/uwsgi;
  scgi_temp_path $A/nginx/scgi;
  types { video/webm webm; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $A/pack;
  }
}
EOF
taskset -c 0 nginx -p "$A/nginx" -e "$A/nginx/error.log" -c "$A/nginx/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

OUTPOST_PORT=$("$BT" freeport)
taskset -c 0 "$OUTPOST" serve --data "$A/data" --listen "127.0.0.1:$OUTPOST_PORT" 2>"$A/outpost.log" &
OUTPOST_PID=$!
PIDS+=("$OUTPOST_PID")

BASELINE_URLS=()
if [ -n "${BENCH_BASELINE:-}" ]; then
  BASELINE_PORT=$("$BT" freeport)
  # Its own data directory, imported by itself: one daemon per data
  # directory, and the baseline's schema may be older.
  if "$BENCH_BASELINE" init --help >/dev/null 2>&1; then
    quiet "$A/baseline-init.log" "$BENCH_BASELINE" init --data "$A/baseline-data"
  fi
  quiet "$A/baseline-import.log" "$BENCH_BASELINE" content import --data "$A/baseline-data" "$A/pack"
  warm "$A/baseline-data/store/objects"
  taskset -c 0 "$BENCH_BASELINE" serve --data "$A/baseline-data" --listen "127.0.0.1:$BASELINE_PORT" 2>"$A/baseline.log" &
  BASELINE_PID=$!
  PIDS+=("$BASELINE_PID")
fi

FLOOR_PORT=$("$BT" freeport)
taskset -c 0 "$BT" fileserver "$A/pack" "127.0.0.1:$FLOOR_PORT" &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")

NGINX_URLS=() OUTPOST_URLS=() FLOOR_URLS=()
while read -r path item; do
  NGINX_URLS+=("http://127.0.0.1:$NGINX_PORT/$path")
  FLOOR_URLS+=("http://127.0.0.1:$FLOOR_PORT/$path")
  OUTPOST_URLS+=("http://127.0.0.1:$OUTPOST_PORT/m/bench-media/$item")
  [ -z "${BENCH_BASELINE:-}" ] || BASELINE_URLS+=("http://127.0.0.1:$BASELINE_PORT/m/bench-media/$item")
done <"$A/files.txt"
waitup "${NGINX_URLS[0]}"
waitup "${OUTPOST_URLS[0]}"
waitup "${FLOOR_URLS[0]}"
[ -z "${BENCH_BASELINE:-}" ] || waitup "${BASELINE_URLS[0]}"
# The worker, not the master, serves; its CPU time is the server's.
NGINX_WORKER=$(cut -d' ' -f1 "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null || true)
[ -n "$NGINX_WORKER" ] || NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)

# run_load NAME ROUND PID URL...: one load test, its JSON kept as NAME-ROUND.json
# and the server's CPU seconds during it as NAME-ROUND.cpu.
run_load() {
  local name=$1 round=$2 pid=$3
  shift 3
  local t0 t1
  t0=$(ticks "$pid")
  # A run with errors still reports; the table shows them.
  taskset -c 1 "$OUTPOST" loadtest --clients 50 --duration "$DURATION" --range 262144 --seed "$round" --json "$@" \
    >"$A/$name-$round.json" 2>"$A/$name-$round.err" || true
  t1=$(ticks "$pid")
  awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.2f\n", (b - a) / hz }' >"$A/$name-$round.cpu"
  if [ ! -s "$A/$name-$round.json" ]; then
    echo "bench: loadtest against $name failed:" >&2
    cat "$A/$name-$round.err" >&2
    exit 1
  fi
}
# Alternating, so drift in the machine's other load hits every server alike.
for round in 1 2; do
  run_load nginx "$round" "$NGINX_WORKER" "${NGINX_URLS[@]}"
  run_load floor "$round" "$FLOOR_PID" "${FLOOR_URLS[@]}"
  run_load outpost "$round" "$OUTPOST_PID" "${OUTPOST_URLS[@]}"
  [ -z "${BENCH_BASELINE:-}" ] || run_load baseline "$round" "$BASELINE_PID" "${BASELINE_URLS[@]}"
done
for p in "$NGINX_PID" "$OUTPOST_PID" "$FLOOR_PID" ${BASELINE_PID:-}; do kill -TERM "$p" 2>/dev/null || true; done

printf '\n50 clients, 256 KiB ranges at random aligned offsets of 6 x 32 MiB files, %s per run;\n' "$DURATION"
printf 'server pinned to core 0, load generator (outpost loadtest, raw client) to core 1.\n\n'
printf '| run | server | req/s | MB/s | p50 ms | p99 ms | errors | server CPU | server CPU per req | client CPU | req/s vs nginx |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
# CPU per request (the server's CPU time over the requests it served) is the
# steadier figure on a busy machine: req/s fall when other work takes the
# server's core, its cost per request much less.
declare -A RPS CPR
NAMES=(nginx floor outpost)
[ -z "${BENCH_BASELINE:-}" ] || NAMES+=(baseline)
for round in 1 2; do
  for name in "${NAMES[@]}"; do
    f=$A/$name-$round.json
    rps=$(jget "$f" requests_per_second)
    secs=$(jget "$f" seconds)
    RPS[$name-$round]=$rps
    CPR[$name-$round]=$(awk -v c="$(cat "$A/$name-$round.cpu")" -v rps="$rps" -v s="$secs" 'BEGIN { printf "%.1f", 1e6*c/(rps*s) }')
    label=$name
    [ "$name" = floor ] && label="Go ServeContent (floor)"
    [ "$name" = baseline ] && label="baseline ($BENCH_BASELINE)"
    awk -v r="$round" -v l="$label" -v rps="$rps" -v mbs="$(jget "$f" mb_per_second)" \
      -v p50="$(jget "$f" p50_ms)" -v p99="$(jget "$f" p99_ms)" -v e="$(jget "$f" errors)" \
      -v scpu="$(cat "$A/$name-$round.cpu")" -v ccpu="$(jget "$f" client_cpu_seconds)" -v s="$secs" \
      -v base="${RPS[nginx-$round]}" -v cpr="${CPR[$name-$round]}" \
      'BEGIN { printf "| %d | %s | %.0f | %.0f | %.2f | %.2f | %d | %.0f%% | %.1f us | %.0f%% | %.2fx |\n", r, l, rps, mbs, p50, p99, e, 100*scpu/s, cpr, 100*ccpu/s, rps/base }'
  done
done
RANGE_RATIO=$(awk -v o1="${RPS[outpost-1]}" -v o2="${RPS[outpost-2]}" -v n1="${RPS[nginx-1]}" -v n2="${RPS[nginx-2]}" \
  'BEGIN { printf "%.2f", (o1/n1 + o2/n2) / 2 }')
FLOOR_RATIO=$(awk -v o1="${RPS[floor-1]}" -v o2="${RPS[floor-2]}" -v n1="${RPS[nginx-1]}" -v n2="${RPS[nginx-2]}" \
  'BEGIN { printf "%.2f", (o1/n1 + o2/n2) / 2 }')
echo
echo "outpost/nginx: ${RANGE_RATIO}x (mean of both rounds); Go ServeContent floor/nginx: ${FLOOR_RATIO}x"
for name in "${NAMES[@]}"; do
  awk -v n="$name" -v a="${CPR[$name-1]}" -v b="${CPR[$name-2]}" -v x="${CPR[nginx-1]}" -v y="${CPR[nginx-2]}" \
    'BEGIN { printf "server CPU per request, mean of both rounds: %-8s %5.1f us (nginx needs %.2fx of it)\n", n, (a+b)/2, (x+y)/(a+b) }'
done
awk -v r="$RANGE_RATIO" 'BEGIN { exit !(r >= 0.8) }' && echo "goal >= 0.8x: MET" || echo "goal >= 0.8x: MISSED"
rm -rf "$A/pack" "$A/data" "$A/baseline-data" # what the next sections' page cache can use
# BENCH_ONLY=a stops here: for iterating on the serving path alone.
if [ "${BENCH_ONLY:-}" = a ]; then section "done"; exit 0; fi

###############################################################################
section "b. import hashing"
B=$WORK/hash
mkdir -p "$B"
"$BT" mediapack "$B/pack" bench-hash 8 $((128 << 20)) >"$B/files.txt"
FILES=()
while read -r path _; do FILES+=("$B/pack/$path"); done <"$B/files.txt"
BYTES=$((8 * (128 << 20)))
warm "$B/pack"
# timed NAME CMD...: wall seconds of CMD into $B/NAME.s
timed() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  quiet "$B/$name.log" "$@"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$B/$name.s"
}
timed sha256sum sha256sum "${FILES[@]}"
timed openssl openssl dgst -sha256 "${FILES[@]}"
mknode "$B/data"
timed import "$OUTPOST" content import --data "$B/data" "$B/pack"
# The hashing path alone, in-process, with its parts for attribution. Built
# with -trimpath like bin/outpost so it reuses make build's compiled packages.
go test -trimpath -run '^$' -bench '^Benchmark(HashCopy|SHA256|BlockHashes|BlockHashesStrongOnly)$' \
  -benchtime 10x ./content/blockstore/ >"$B/gobench.txt"
gomb() { awk -v b="Benchmark$1-" 'index($1, b) == 1 { for (i = 1; i < NF; i++) if ($(i+1) == "MB/s") print $i }' "$B/gobench.txt"; }
mbs() { awk -v s="$(cat "$B/$1.s")" -v n="$BYTES" 'BEGIN { printf "%.0f", n / s / 1e6 }'; }
SHA=$(mbs sha256sum) OSSL=$(mbs openssl) IMP=$(mbs import) HC=$(gomb HashCopy)

printf '\n8 x 128 MiB random files (1 GiB), page cache warm; MB = 10^6 bytes.\n\n'
printf '| what | MB/s | vs sha256sum | vs openssl |\n|---|---:|---:|---:|\n'
row() { awk -v l="$1" -v v="$2" -v s="$SHA" -v o="$OSSL" 'BEGIN { printf "| %s | %.0f | %.2fx | %.2fx |\n", l, v, v/s, v/o }'; }
row "sha256sum (coreutils, one file after another)" "$SHA"
row "openssl dgst -sha256 (SHA-NI)" "$OSSL"
row "outpost content import (hash + copy + fsync into the store)" "$IMP"
row "outpost hashing path: BenchmarkHashCopy (SHA-256 + block map, to io.Discard)" "$HC"
row "  part: crypto/sha256 alone (BenchmarkSHA256)" "$(gomb SHA256)"
row "  part: syncthing block hashes with adler32 (BenchmarkBlockHashes)" "$(gomb BlockHashes)"
row "  part: block hashes without adler32 (BenchmarkBlockHashesStrongOnly)" "$(gomb BlockHashesStrongOnly)"
echo
awk -v h="$HC" -v s="$SHA" 'BEGIN { exit !(h >= 0.9 * s) }' && echo "goal hashing >= 0.9x sha256sum: MET" || echo "goal hashing >= 0.9x sha256sum: MISSED"
awk -v h="$IMP" -v s="$SHA" 'BEGIN { exit !(h >= 0.9 * s) }' && echo "full import >= 0.9x sha256sum: yes" || echo "full import >= 0.9x sha256sum: no"
rm -rf "$B"

###############################################################################
section "c. cold start and memory, 10,000 items"
C=$WORK/catalog
mkdir -p "$C"
"$BT" catalogpack "$C/pack" bench-10k 10000
mknode "$C/data"
t0=$(now)
quiet "$C/import.log" "$OUTPOST" content import --data "$C/data" "$C/pack"
IMPORT_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
"$BT" coldstart -bin "$OUTPOST" -data "$C/data" -pack "$C/pack" -runs 3 -clients 4 \
  -pages 200 -total-pages 1000 -settle 5s >"$C/coldstart.txt"
cs() { awk -v k="$1" '$1 == k { print $2 }' "$C/coldstart.txt"; }
mib() { awk -v k="$(cs "$1")" 'BEGIN { printf "%.1f", k / 1024 }'; }

printf '\nOne course of 10,000 items (samplecourse.WriteLarge), imported in %s s.\n' "$IMPORT_S"
printf 'Start: exec of outpost serve to the first 200 of / (poll every %s ms: resolution ~1 ms + one request); 3 starts: %s ms.\n' "$(cs poll_ms)" "$(cs start_ms)"
printf 'Page views: 4 concurrent clients cycling home, search, course page (its first 200 items; the page is paged), item page.\n'
printf 'RSS read once the process used no CPU for 0.5 s ("idle"), and again %s s later ("settled").\n\n' "$(cs settle_s)"
printf '| measure | outpost | goal | kiwix-serve reference |\n|---|---:|---:|---:|\n'
printf '| first page after exec (median of 3) | %s ms | < 1000 ms | 49 ms |\n' "$(cs start_ms_median)"
printf '| RSS idle after the first page | %s MiB | | 36 MiB |\n' "$(mib rss_first_kib)"
printf '| RSS idle after 200 page views | %s MiB (settled %s) | < 60 MB (57.2 MiB) | |\n' "$(mib rss_200_kib)" "$(mib rss_200_settled_kib)"
printf '| RSS idle after 1,000 page views | %s MiB (settled %s) | | 117 MiB |\n' "$(mib rss_1000_kib)" "$(mib rss_1000_settled_kib)"
printf '| peak RSS (VmHWM) | %s MiB | | |\n' "$(mib hwm_kib)"
printf '| page latency p50 / p99, first 200 views | %s / %s ms | | |\n' "$(cs pages_200_p50_ms)" "$(cs pages_200_p99_ms)"
printf '| page latency p50 / p99, next 800 views | %s / %s ms | | |\n' "$(cs pages_1000_p50_ms)" "$(cs pages_1000_p99_ms)"
echo
awk -v s="$(cs start_ms_median)" 'BEGIN { exit !(s < 1000) }' && echo "goal start < 1 s: MET" || echo "goal start < 1 s: MISSED"
awk -v k="$(cs rss_200_kib)" 'BEGIN { exit !(k * 1024 < 60e6) }' && echo "goal RSS < 60 MB after 200 views: MET" || echo "goal RSS < 60 MB after 200 views: MISSED"

###############################################################################
section "d. sync: bytes on the wire vs rsync -az, hub CPU"
# The hub runs as `outpost hub` and rsync as `rsync --daemon`, each its own
# process (for CPU); the box and a counting proxy run in benchtool. Bytes are
# both directions at the proxy. BENCH_SYNC_SHAPED=1 adds the initial sync over
# a 1 Mb/s, 300 ms RTT link: about 17 minutes more.
shaped=()
[ "${BENCH_SYNC_SHAPED:-0}" = 1 ] && shaped=(-shaped)
"$BT" syncbench -outpost "$OUTPOST" -work "$WORK/sync" "${shaped[@]}"

section_e
section "done"
