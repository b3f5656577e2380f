#!/usr/bin/env bash
# Fault drills (`make drills`): feeds bad files to `atlas data import`, kills `atlas data import`, `atlas data
# metrics` and `atlas data simulate` with SIGKILL at several moments, and fills the disk under them, all against
# scratch stores under a temporary ATLAS_HOME. One line per drill:
#
#   held   <drill>              the command failed with one `Error:` line and the store was as before, or a
#                               re-run after the kill finished with the same data as an uninterrupted run
#   BROKEN <drill>: <why>
#   skip   <drill>: <why>       the machine cannot run the drill (a tmpfs needs root and a mount namespace)
#
# Exits 1 when a drill broke. Takes a minute or two on 2 cores.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${ATLAS_BIN:-$ROOT/.venv/bin}
ATLAS="$BIN/atlas"
PY="$BIN/python"
HELP="$ROOT/scripts/fault_drills.py"

# A private mount namespace lets the disk-full drills mount small tmpfs folders that nobody else sees.
if [ -z "${ATLAS_DRILLS_NAMESPACE:-}" ] && [ "$(id -u)" -eq 0 ] && unshare -m --propagation private true 2>/dev/null
then
  exec unshare -m --propagation private env ATLAS_DRILLS_NAMESPACE=1 bash "${BASH_SOURCE[0]}" "$@"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/atlas-drills.XXXXXX")
MOUNTS=()
cleanup() {
  for mount in "${MOUNTS[@]}"; do umount "$mount" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
unset ATLAS_STORE_URL ATLAS_GDS_URL ATLAS_EXTRA_VENUES
broken=0

report() {  # drill, why (empty: it held)
  [ -z "${ATLAS_DRILLS_TIMING:-}" ] || echo "  $(date +%T) ${SECONDS}s" >&2
  if [ -z "$2" ]; then echo "held   $1"; else echo "BROKEN $1: $2"; broken=$((broken + 1)); fi
}
checksum() { "$PY" "$HELP" checksum "$1/market.db"; }
content() { "$PY" "$HELP" content "$1/market.db"; }
integrity() { "$PY" "$HELP" integrity "$1/market.db"; }
seconds() { date +%s.%N; }
arithmetic() { awk "BEGIN { printf \"%.2f\", $1 }"; }

error_problem() {  # exit status, stderr file, expected status, text the line must hold: prints what is wrong
  local status=$1 err=$2 want=$3 text=$4
  if [ "$status" != "$want" ]; then echo "exit status $status, not $want: $(head -c 300 "$err" | tr '\n' '|')"
  elif grep -q -e Traceback -e 'Aborted!' "$err"; then echo "a traceback or Aborted!: $(tail -n 1 "$err")"
  elif [ "$(wc -l < "$err")" != 1 ] || ! grep -q '^Error: ' "$err"; then
    echo "stderr is not one Error: line: $(head -c 300 "$err" | tr '\n' '|')"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$err"; then echo "the error does not name $text: $(cat "$err")"
  fi
}

run_killed() {  # home, seconds or "log:TEXT", command...: runs the command and kills it with SIGKILL then
  local home=$1 when=$2; shift 2
  ATLAS_HOME=$home "$@" >"$WORK/killed.out" 2>&1 &
  local pid=$!
  if [[ $when == log:* ]]; then
    "$PY" "$HELP" wait-log "$home/market.db" "${when#log:}" 120
  else
    sleep "$when"
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  KILLED_STATUS=$?  # 137: killed; anything else: it had finished
}

after_kill() {  # drill, home, reference content, command...: the store is sound, and a re-run completes it
  local drill=$1 home=$2 reference=$3; shift 3
  local note="" sound
  [ "$KILLED_STATUS" = 137 ] || note=" (it had finished before the kill)"
  sound=$(integrity "$home")
  if [ "$sound" != ok ]; then report "$drill$note" "the store is damaged: $sound"; return; fi
  if ! ATLAS_HOME=$home "$@" >"$WORK/rerun.out" 2>"$WORK/rerun.err"; then
    report "$drill$note" "the re-run failed: $(tail -n 1 "$WORK/rerun.err")"; return
  fi
  if [ "$(content "$home")" != "$reference" ]; then
    report "$drill$note" "after the re-run the store differs from an uninterrupted run's"; return
  fi
  report "$drill$note" ""
}

FILES=$WORK/files
"$PY" "$HELP" files "$FILES" || { echo "BROKEN setup: cannot write the drills' files"; exit 1; }
SIMULATE=(data simulate --days 4 --exchanges bitstamp,itbit --snapshot-interval 20s --levels 10 --seed 3)

# --- bad files: one Error line naming the file, exit 2, the store unchanged ------------------------------------
HOME_FILES=$WORK/bad-files
export ATLAS_HOME=$HOME_FILES
"$ATLAS" data simulate --days 1 --exchanges bitstamp,itbit --snapshot-interval 60s --levels 10 >/dev/null &&
  "$ATLAS" data import trades "$FILES/good_trades.csv" --exchange bitstamp >/dev/null &&
  "$ATLAS" data import bars "$FILES/good_bars.csv" --exchange bitstamp --bucket 1h >/dev/null ||
  { echo "BROKEN setup: cannot fill the scratch store"; exit 1; }
for kind in trades bars; do
  for file in "$FILES/$kind"/*; do
    name=$(basename "$file")
    options=(--exchange bitstamp)
    [ "$kind" = bars ] && options+=(--bucket 1h)
    [ "$name" = epoch_ms.csv ] && options+=(--unit s)
    before=$(checksum "$HOME_FILES")
    "$ATLAS" data import "$kind" "$file" "${options[@]}" >"$WORK/out" 2>"$WORK/err"
    why=$(error_problem $? "$WORK/err" 2 "$name")
    [ -z "$why" ] && [ "$(checksum "$HOME_FILES")" != "$before" ] && why="the store changed"
    report "import $kind $name" "$why"
  done
done

for args in "data series bitstamp_btc_usd.1min.midpoint --start 3000-01-01" "data metrics --end 1500-01-01" \
            "data simulate --days 1 --start 3000-01-01" "data import gds --url sqlite:///none.db --start 2262-05-01"; do
  before=$(checksum "$HOME_FILES")
  # shellcheck disable=SC2086  # the words of args are the arguments
  "$ATLAS" $args >"$WORK/out" 2>"$WORK/err"
  why=$(error_problem $? "$WORK/err" 2 "outside the times Atlas can hold")
  [ -z "$why" ] && [ "$(checksum "$HOME_FILES")" != "$before" ] && why="the store changed"
  report "atlas ${args%% --*} with a time out of range" "$why"
done

"$ATLAS" data series bitstamp_btc_usd.1h.close --output "$WORK/no/such/folder/close.csv" >"$WORK/out" 2>"$WORK/err"
report "data series --output into a missing folder" "$(error_problem $? "$WORK/err" 2 "$WORK/no/such/folder")"
unset ATLAS_HOME

# --- kill -9: the store stays sound, and the same command run again gives an uninterrupted run's data ----------
REF_IMPORT=$WORK/import-reference
ATLAS_HOME=$REF_IMPORT "$ATLAS" data import trades "$FILES/good_trades.csv" --exchange bitstamp >/dev/null
began=$(seconds)
ATLAS_HOME=$REF_IMPORT "$ATLAS" data import trades "$FILES/big_trades.csv" --exchange bitstamp >/dev/null ||
  { echo "BROKEN setup: the uninterrupted import failed"; exit 1; }
took=$(arithmetic "$(seconds) - $began")
reference=$(content "$REF_IMPORT")
for share in 0.3 0.55 0.8; do
  home=$WORK/import-kill-$share
  ATLAS_HOME=$home "$ATLAS" data import trades "$FILES/good_trades.csv" --exchange bitstamp >/dev/null
  before=$(checksum "$home")
  run_killed "$home" "$(arithmetic "$took * $share")" "$ATLAS" data import trades "$FILES/big_trades.csv" \
    --exchange bitstamp
  if [ "$(checksum "$home")" = "$before" ]; then
    after_kill "kill -9 import trades at ${share} of its time" "$home" "$reference" \
      "$ATLAS" data import trades "$FILES/big_trades.csv" --exchange bitstamp
  elif [ "$(content "$home")" = "$reference" ]; then
    report "kill -9 import trades at ${share} of its time (it had committed)" ""
  else
    report "kill -9 import trades at ${share} of its time" "the store holds part of the import"
  fi
done
# importing the same big file again is refused in one line, and quickly (the whole file is checked first)
timeout 30 env ATLAS_HOME="$REF_IMPORT" "$ATLAS" data import trades "$FILES/big_trades.csv" --exchange bitstamp \
  >/dev/null 2>"$WORK/err"
status=$?
if [ "$status" = 124 ]; then
  report "import trades of a big file already stored" "no answer within 30 s (an uninterrupted import took ${took} s)"
else
  report "import trades of a big file already stored" "$(error_problem "$status" "$WORK/err" 2 "already in the store")"
fi

REF_SIMULATE=$WORK/simulate-reference
ATLAS_HOME=$REF_SIMULATE "$ATLAS" "${SIMULATE[@]}" >/dev/null ||
  { echo "BROKEN setup: the uninterrupted simulation failed"; exit 1; }
reference=$(content "$REF_SIMULATE")
for when in 0.5 log:day0 log:day2; do
  home=$WORK/simulate-kill-${when#log:}
  if [[ $when == log:day* ]]; then moment="once day $((${when#log:day} + 1)) of 4 is written"
  else moment="${when} s after its start"; fi
  run_killed "$home" "$when" "$ATLAS" "${SIMULATE[@]}"
  after_kill "kill -9 simulate $moment" "$home" "$reference" "$ATLAS" "${SIMULATE[@]}"
  if [[ $when == log:* ]] && [ "$KILLED_STATUS" = 137 ] && ! grep -q '^resuming: days\? 1' "$WORK/rerun.out"; then
    report "simulate re-run, killed $moment, says it resumes" "it printed: $(head -n 1 "$WORK/rerun.out")"
  fi
done

REF_METRICS=$WORK/metrics-reference
mkdir -p "$REF_METRICS"
"$PY" "$HELP" copy "$REF_SIMULATE/market.db" "$REF_METRICS/market.db"
began=$(seconds)
ATLAS_HOME=$REF_METRICS "$ATLAS" data metrics --bucket 1min >/dev/null ||
  { echo "BROKEN setup: the uninterrupted metrics run failed"; exit 1; }
took=$(arithmetic "$(seconds) - $began")
reference=$(content "$REF_METRICS")
for share in 0.5 0.7 0.9; do
  home=$WORK/metrics-kill-$share
  mkdir -p "$home"
  "$PY" "$HELP" copy "$REF_SIMULATE/market.db" "$home/market.db"
  run_killed "$home" "$(arithmetic "$took * $share")" "$ATLAS" data metrics --bucket 1min
  after_kill "kill -9 metrics at ${share} of its time" "$home" "$reference" "$ATLAS" data metrics --bucket 1min
done

# --- a full disk and a read-only folder: small tmpfs folders in this drill's own mount namespace ----------------
mount_tmpfs() {  # folder, size, [ro]
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2${3:+,$3}" tmpfs "$1" 2>/dev/null && MOUNTS+=("$1")
}
if [ -z "${ATLAS_DRILLS_NAMESPACE:-}" ] || ! mount_tmpfs "$WORK/full" 6m; then
  for drill in "disk full: import trades" "disk full: simulate, then finish" "disk full: series --output" \
               "read-only folder: series --output"; do
    echo "skip   $drill: needs root and a private mount namespace (unshare -m) for a tmpfs"
  done
else
  home=$WORK/full/home
  ATLAS_HOME=$home "$ATLAS" data import trades "$FILES/good_trades.csv" --exchange bitstamp >/dev/null
  before=$(checksum "$home")
  ATLAS_HOME=$home "$ATLAS" data import trades "$FILES/big_trades.csv" --exchange bitstamp >/dev/null \
    2>"$WORK/err"
  why=$(error_problem $? "$WORK/err" 2 "$home/market.db")
  [ -z "$why" ] && [ "$(checksum "$home")" != "$before" ] && why="the store changed"
  report "disk full: import trades" "$why"
  umount "$WORK/full"

  mount_tmpfs "$WORK/full" 4m
  home=$WORK/full/home
  ATLAS_HOME=$home "$ATLAS" "${SIMULATE[@]}" >/dev/null 2>"$WORK/err"
  why=$(error_problem $? "$WORK/err" 2 "$home/market.db")
  if [ -z "$why" ]; then
    mount -o remount,size=64m "$WORK/full"
    KILLED_STATUS=137
    after_kill "disk full: simulate, then finish" "$home" "$(content "$REF_SIMULATE")" "$ATLAS" "${SIMULATE[@]}"
  else
    report "disk full: simulate, then finish" "$why"
  fi

  mount_tmpfs "$WORK/tiny" 64k
  head -c 1000000 /dev/zero > "$WORK/tiny/filler" 2>/dev/null
  ATLAS_HOME=$REF_METRICS "$ATLAS" data series bitstamp_btc_usd.1min.midpoint --output "$WORK/tiny/mid.csv" \
    >/dev/null 2>"$WORK/err"
  why=$(error_problem $? "$WORK/err" 2 "$WORK/tiny/mid.csv")
  [ -z "$why" ] && [ "$(ls -A "$WORK/tiny")" != filler ] && why="a partial file was left: $(ls -A "$WORK/tiny")"
  report "disk full: series --output" "$why"

  mount_tmpfs "$WORK/read-only" 64k ro
  ATLAS_HOME=$REF_METRICS "$ATLAS" data series bitstamp_btc_usd.1min.midpoint --format parquet \
    --output "$WORK/read-only/mid.parquet" >/dev/null 2>"$WORK/err"
  report "read-only folder: series --output" "$(error_problem $? "$WORK/err" 2 "$WORK/read-only/mid.parquet")"
fi

[ "$broken" -eq 0 ] || { echo "$broken drill(s) broke"; exit 1; }
