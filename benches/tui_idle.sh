#!/usr/bin/env bash
# The terminal UI's cost while a user just leaves it open: `tether demo` (TUI, engine
# refreshing six short-lived demo tokens, proxy and six simulated providers, all one
# process) runs in a detached tmux pane; after it settles, its CPU time (all threads, from
# /proc) and resident memory are read before and after SECONDS of nobody touching it.
#
#   bash benches/tui_idle.sh            # 60 s; needs tmux
#   SECONDS_IDLE=20 bash benches/tui_idle.sh
#
# Target: under 1% of one core.
set -euo pipefail
cd "$(dirname "$0")/.."

idle=${SECONDS_IDLE:-60}
settle=10
command -v tmux >/dev/null || { echo "tui_idle: tmux is needed (apt-get install tmux)" >&2; exit 1; }
cargo build --profile dist --quiet --bin tether
bin=$PWD/target/dist/tether

home=$(mktemp -d)
session=tether-idle-$$
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  rm -rf "$home"
}
trap cleanup EXIT
tmux new-session -d -s "$session" -x 120 -y 34 \
  "exec env TETHER_HOME='$home' DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent '$bin' demo"
pid=$(tmux list-panes -t "$session" -F '#{pane_pid}')

ticks() {
  # utime + stime (fields 14 and 15), after the command name, which may hold spaces.
  local stat
  stat=$(cat "/proc/$pid/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $(( ${12} + ${13} ))
}

sleep "$settle"
[ -d "/proc/$pid" ] || { echo "tui_idle: the demo did not start" >&2; exit 1; }
before=$(ticks)
sleep "$idle"
after=$(ticks)
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
used=$(( after - before ))
percent=$(awk -v t="$used" -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.2f", 100 * t / hz / s }')
echo "tether demo, idle for ${idle} s after ${settle} s to settle:"
echo "  CPU   ${percent}% of one core (${used} ticks at ${hz} Hz)"
echo "  RSS   $(( rss_kb / 1024 )) MB"
