# shellcheck shell=bash
# The single-quoted strings given to perl are Perl code, meant to reach perl unexpanded;
# several globals set here are read only by the scripts that source this file.
# shellcheck disable=SC2016,SC2034
# What the interop scripts share (sourced, not run): reporting, cleanup, Debian library
# packages, the server (start, admin API, JSON), agent runs bounded in time, and the
# deployment scenarios 1–6 that every agent is held to. See docs/interop.md.
#
# The sourcing script sets `set -euo pipefail` first; this file defines functions and a few
# globals (work, failures, server_pid, …) and installs the EXIT trap.

interop_name=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
lib=$repo/scripts/interop/lib
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}
started=$(date +%s)

say() { printf '%s\n' "$*"; }
# A progress line with the seconds since the start, so slow steps (apt, the build) show.
step() { say "--- [$(($(date +%s) - started)) s] $*"; }
die() { printf '%s: %s\n' "$interop_name" "$*" >&2; exit 2; }

failures=0
pass() { say "PASS $1: $2"; }
fail() { say "FAIL $1: $2"; failures=$((failures + 1)); }

work=$(mktemp -d "/tmp/tessera-$interop_name.XXXXXX")
server_pid=
agent_groups=()

# True while a process of group $1 is alive (zombies do not count: they wait for a reaper).
group_alive() {
  local stat rest fields
  for stat in /proc/[0-9]*/stat; do
    # A process may exit between the glob and the read.
    { read -r rest <"$stat"; } 2>/dev/null || continue
    rest=${rest##*) }
    read -ra fields <<<"$rest"
    [[ ${fields[0]} != Z && ${fields[2]} == "$1" ]] && return 0
  done
  return 1
}

# Pids of processes other than the server whose command line names the scratch directory
# (an agent's detached download process, an action it started).
strays() {
  local cmdline dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [[ $pid == "${server_pid:-}" || $pid == "$$" ]] && continue
    { cmdline=$(tr '\0' ' ' <"$dir/cmdline"); } 2>/dev/null || continue
    [[ $cmdline == *"$work"* ]] && echo "$pid"
  done
  return 0
}

strays_alive() {
  [[ -n $(strays) ]]
}

kill_strays() {
  local pid
  for pid in $(strays); do kill -TERM "$pid" 2>/dev/null || true; done
}

# Every process this script started goes, whatever happens: the server, and each agent run's
# process group (an agent may leave a child behind: OCS's download process, an action).
cleanup() {
  local status=$? group
  for group in "${agent_groups[@]}"; do
    if group_alive "$group"; then kill -TERM -- "-$group" 2>/dev/null || true; fi
  done
  kill_strays
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ ${TESSERA_INTEROP_KEEP:-0} == 1 ]]; then
    say "scratch directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Debian library packages ---------------------------------------------------------------

apt_updated=0
apt_update() {
  ((apt_updated)) && return
  step "apt-get update"
  apt-get update -qq
  apt_updated=1
}

# Installs those of the given Debian packages that are missing (libraries only: nothing
# else is installed system-wide). Needs root only when something is missing.
ensure_debs() {
  local package missing=()
  command -v dpkg-query >/dev/null || die "needs a Debian/Ubuntu machine (dpkg, apt-get)"
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "run as root: apt-get must install ${missing[*]}"
  apt_update
  step "installing Debian library packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What lib/admin-api.pl needs: LWP with HTTPS.
admin_api_debs=(libwww-perl liblwp-protocol-https-perl libio-socket-ssl-perl libnet-ssleay-perl)

# --- The server ----------------------------------------------------------------------------

# Builds the given cargo packages (debug, which CI's test step has built already).
cargo_build() {
  local args=() package
  for package in "$@"; do args+=(-p "$package"); done
  step "cargo build ${args[*]} (debug: CI's test step has built it already)"
  (cd "$repo" && cargo build -q "${args[@]}")
  server_bin=$CARGO_TARGET_DIR/debug/tessera-server
  [[ -x $server_bin ]] || die "no $server_bin after the build"
}

free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0", ReuseAddr => 1)->sockport'
}

data=$work/data
# Starts the server on fresh ports with `ocs.compat = $1`; returns 1 if it exited before
# listening (a port taken between probing and binding).
start_server_once() {
  local compat=$1
  https_port=$(free_port)
  http_port=$(free_port)
  rm -rf "$data"
  mkdir -m 700 "$data"
  # Written before the first `serve`, which initialises the rest around it.
  cat >"$data/config.toml" <<EOF
[listen]
https = "127.0.0.1:$https_port"
http = "127.0.0.1:$http_port"

[public]
names = ["127.0.0.1"]
https_authority = "127.0.0.1:$https_port"
http_authority = "127.0.0.1:$http_port"

[ocs]
compat = $compat
prolog_freq_hours = 12

# Fast schedule: no sleeps; PERIOD_LENGTH must be >= every package's PRI (5 here).
[ocs.download]
on = true
period_length = 5
frag_latency = 0
cycle_latency = 0
period_latency = 0
timeout_days = 7
execution_timeout_minutes = 5
EOF
  "$server_bin" --data "$data" serve >"$work/server.out" 2>"$work/server.log" </dev/null &
  server_pid=$!
  local deadline=$((SECONDS + 120))
  # The last line of the first output: the admin token and the CA fingerprint came before.
  while ! grep -q '^Stop with Ctrl-C' "$work/server.out"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=
      return 1
    fi
    ((SECONDS < deadline)) || die "the server did not start within 120 s; see $work/server.log"
    sleep 0.2
  done
}

# Starts the server (`ocs.compat = $1`) and points the admin API helper at it. Sets
# https_port, ca_file, admin_token and ca_fingerprint.
start_server() {
  local attempt
  for attempt in 1 2 3; do
    start_server_once "$1" && break
    say "the server exited before listening (attempt $attempt): $(tail -n 3 "$work/server.log")"
    ((attempt < 3)) || die "the server would not start"
  done
  step "tessera-server listening on https://127.0.0.1:$https_port (pid $server_pid, ocs.compat = $1)"
  ca_file=$data/ca-certificate.pem
  [[ -s $ca_file ]] || die "the server wrote no $ca_file"
  # `serve` prints the admin token and the CA's fingerprint once, at initialisation.
  admin_token=$(sed -n 's/^ *admin token ([^)]*): *//p' "$work/server.out")
  [[ -n $admin_token ]] || die "no admin token in the server's first output ($work/server.out)"
  ca_fingerprint=$(sed -n 's/.*--ca-fingerprint \([^ ]*\).*/\1/p' "$work/server.out" | head -n 1)
  # The token travels in the environment, never in argv.
  export TESSERA_API=https://127.0.0.1:$https_port TESSERA_CA=$ca_file TESSERA_ADMIN_TOKEN=$admin_token
}

api() { perl "$lib/admin-api.pl" "$@"; }
# Evaluates a Perl expression over the JSON on stdin ($d), printing its value.
json() { perl -MJSON::PP -0777 -ne 'my $d = decode_json($_); my $v = eval { '"$1"' }; print $v // ""'; }

show_server_log() {
  say "    --- last lines of the server's log"
  tail -n "$1" "$work/server.log" | sed 's/^/    /'
}

# --- Agent runs ----------------------------------------------------------------------------

# Runs a command (an agent run labelled $1) in its own session, without proxies, stdout to
# $work/$1.out and stderr to $work/$1.err, and waits for it and anything it left in its
# process group, 120 s at most (then stops them and returns 1). Returns the command's status.
run_bounded() {
  local label=$1 pid status=0
  shift
  step "agent run: $label"
  setsid env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
    no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost "$@" \
    >"$work/$label.out" 2>"$work/$label.err" </dev/null &
  # Without job control (how scripts run) the background job is no group leader, so setsid
  # makes the command itself the leader: its pid names the group, children included.
  pid=$!
  agent_groups+=("$pid")
  local deadline=$((SECONDS + 120))
  # The group, and then any process still working in this scratch directory: OCS's download
  # process can outlive its group (seen in CI: the scenario was checked while the download
  # process was still running the package's action).
  while group_alive "$pid" || strays_alive; do
    if ((SECONDS >= deadline)); then
      say "the agent or a process it started was still running after 120 s; stopping them"
      kill -TERM -- "-$pid" 2>/dev/null || true
      kill_strays
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  wait "$pid" || status=$?
  ((status == 0)) || say "the agent ($label) exited with status $status"
  return "$status"
}

# Lines in file $1 (0 when it does not exist): how often an action that appends ran.
lines_of() {
  if [[ -f $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

# Fragment requests the server logged for packages $@ (all when none), in order, as
# "package-fragment" words (`fragment requested package=… fragment=…`, info level, from
# crates/server/src/download.rs).
fragment_requests() {
  local ids=${*:-[0-9]+}
  ids=${ids// /|}
  sed -nE "s/.*fragment requested package=($ids) fragment=([0-9]+).*/\\1-\\2/p" "$work/server.log" |
    tr '\n' ' ' | sed 's/ $//'
}

# --- Packages and deployment scenarios 1–6 -------------------------------------------------

out=$work/out
payloads=$work/payloads
store_dir=$work/stored/here

# Builds a package; prints its ID.
build() {
  local json_out
  json_out=$("$server_bin" --data "$data" -q package build --no-fsync --json "$@") ||
    die "package build $* failed"
  json '$d->{id}' <<<"$json_out"
}

# Builds the seven packages of scenarios 1–6, alters one archive after its info was written,
# and assigns them all to device $1. Each action appends a line to a file under $out, so a
# second run of it shows. Sets id_exec_ok, id_exec_fail, id_launch, id_store, id_big,
# id_small, id_altered.
make_packages() {
  local device_key=$1 id big_size big_fragment big_frags altered_archive
  mkdir -p "$out" "$payloads/exec-ok" "$payloads/exec-fail" "$payloads/launch" \
    "$payloads/store/sub" "$payloads/small" "$payloads/big" "$payloads/altered"
  printf '#!/bin/sh\necho ran >>"%s"\n' "$out/exec-ok" >"$payloads/exec-ok/install.sh"
  printf '#!/bin/sh\necho ran >>"%s"\nexit 1\n' "$out/exec-fail" >"$payloads/exec-fail/install.sh"
  # No '-' in a LAUNCH name: the Unix OCS agent cuts the name there.
  printf '#!/bin/sh\necho ran >>"%s"\nexit 3\n' "$out/launch" >"$payloads/launch/launch3.sh"
  printf 'first stored file\n' >"$payloads/store/a.txt"
  printf 'second stored file, in a subdirectory\n' >"$payloads/store/sub/b.txt"
  printf '#!/bin/sh\necho ran >>"%s"\n' "$out/small" >"$payloads/small/install.sh"
  printf '#!/bin/sh\ncmp -s blob blob.copy && echo ran >>"%s"\n' "$out/big" >"$payloads/big/install.sh"
  printf '#!/bin/sh\necho ran >>"%s"\n' "$out/altered" >"$payloads/altered/install.sh"
  # Incompressible content so that the archive is big enough for five fragments.
  head -c 20000 /dev/urandom >"$payloads/big/blob"
  cp "$payloads/big/blob" "$payloads/big/blob.copy"
  tar -czf "$work/big.tar.gz" -C "$payloads/big" .
  big_size=$(stat -c %s "$work/big.tar.gz")
  big_fragment=$(((big_size + 4) / 5))

  id_exec_ok=$(build "$payloads/exec-ok" --name exec-ok --version 1 --priority 1 --execute "sh install.sh")
  id_exec_fail=$(build "$payloads/exec-fail" --name exec-fail --version 1 --priority 1 --execute "sh install.sh")
  id_launch=$(build "$payloads/launch" --name launch3 --version 1 --priority 1 --launch launch3.sh)
  id_store=$(build "$payloads/store" --name store --version 1 --priority 1 --store "$store_dir")
  id_big=$(build "$work/big.tar.gz" --name big --version 1 --priority 5 --fragment-size "$big_fragment" --execute "sh install.sh")
  id_small=$(build "$payloads/small" --name small --version 1 --priority 1 --execute "sh install.sh")
  id_altered=$(build "$payloads/altered" --name altered --version 1 --priority 1 --execute "sh install.sh")

  big_frags=$("$server_bin" --data "$data" -q package show --json "$id_big" | json '$d->{fragments}')
  [[ $big_frags == 5 ]] || die "the big package has $big_frags fragments, not 5 (archive $big_size bytes)"

  # Alter the archive after its info was written: same size, one byte flipped in the middle.
  altered_archive=$data/repo/download/$id_altered/archive
  perl -e 'open my $f, "+<", $ARGV[0] or die "$ARGV[0]: $!"; my $at = int((-s $f) / 2);
    seek $f, $at, 0; read $f, my $b, 1; seek $f, $at, 0; print $f chr(ord($b) ^ 0xff); close $f or die' \
    "$altered_archive"

  for id in "$id_exec_ok" "$id_exec_fail" "$id_launch" "$id_store" "$id_big" "$id_small" "$id_altered"; do
    api POST /api/v1/assignments "{\"device\":$device_key,\"package\":$id}" >/dev/null
  done
  step "packages: exec-ok $id_exec_ok, exec-fail $id_exec_fail, launch3 $id_launch, store $id_store, big $id_big ($big_frags fragments, PRI 5), small $id_small, altered $id_altered"
}

# The code the server recorded for package $1 ("" while none), from the package's statistics.
code_of() {
  api GET "/api/v1/packages/$1/stats" |
    json 'my @c = grep { $d->{by_code}{$_} } sort keys %{ $d->{by_code} }; @c == 1 && $d->{success} + $d->{error} == 1 ? $c[0] : join("+", @c) || "none (waiting $d->{waiting}, notified $d->{notified})"'
}

# Checks that package $2 ended with code $3 for scenario $1, plus an extra condition's
# verdict ($4: empty = fine, otherwise what is wrong).
check() {
  local name=$1 id=$2 want=$3 problem=${4:-} code
  code=$(code_of "$id")
  if [[ $code == "$want" && -z $problem ]]; then
    pass "$name" "package $id: $code"
  else
    fail "$name" "package $id: saw $code, want $want${problem:+; $problem}"
  fi
}

# What is wrong with how often the action behind $out/$1 ran, want $2 times ("" if right).
ran_times() {
  local seen
  seen=$(lines_of "$out/$1")
  [[ $seen == "$2" ]] || printf '%s' "its command ran $seen times, want $2"
}

# Scenarios 1–6, after the deployment run.
check_deployment() {
  local problem file requests expected code_small code_big

  check "1 EXECUTE succeeds" "$id_exec_ok" SUCCESS "$(ran_times exec-ok 1)"
  check "2 EXECUTE fails" "$id_exec_fail" ERR_EXECUTE "$(ran_times exec-fail 1)"
  check "3 LAUNCH exits 3" "$id_launch" SUCCESS_3 "$(ran_times launch 1)"

  problem=
  for file in a.txt sub/b.txt; do
    cmp -s "$payloads/store/$file" "$store_dir/$file" || problem+="$store_dir/$file missing or different; "
  done
  check "4 STORE" "$id_store" SUCCESS "${problem%; }"

  # Scenario 5: both succeed, and the server saw the fragment requests in schedule order.
  # PRI 1 steps every cycle, PRI 5 every fifth: the small package's only fragment comes
  # before the big one's first, and the big one's come 1..5, each once.
  problem=
  [[ $(lines_of "$out/small") == 1 ]] || problem+="the small package ran $(lines_of "$out/small") times, want 1; "
  [[ $(lines_of "$out/big") == 1 ]] ||
    problem+="the big package ran $(lines_of "$out/big") times with its blob intact, want 1; "
  requests=$(fragment_requests "$id_small" "$id_big")
  expected="$id_small-1 $id_big-1 $id_big-2 $id_big-3 $id_big-4 $id_big-5"
  [[ $requests == "$expected" ]] || problem+="fragment requests in the server log: [$requests], want [$expected]; "
  code_small=$(code_of "$id_small")
  code_big=$(code_of "$id_big")
  if [[ $code_small == SUCCESS && $code_big == SUCCESS && -z $problem ]]; then
    pass "5 priorities and fragments" "small $id_small: $code_small, big $id_big: $code_big; requests [$requests]"
  else
    fail "5 priorities and fragments" "small $id_small: $code_small, big $id_big: $code_big (want SUCCESS both); ${problem%; }"
  fi

  check "6 altered archive" "$id_altered" ERR_BAD_DIGEST "$(ran_times altered 0)"
}

# --- Deployments decided from manifests (scenarios 9–11) -----------------------------------

# Package IDs device $1's manifest asks for (GET /api/v1/devices/{key}/decisions), sorted
# numerically and space-separated: Munki's order (conditional items before the manifest's own
# items) is not what these scenarios are about.
decided() {
  api GET "/api/v1/devices/$1/decisions" |
    json 'join " ", sort { $a <=> $b } map { $_->{id} } @{ $d->{packages} }'
}

# The IDs $@ sorted numerically and space-separated, as `decided` prints them.
sorted_ids() {
  printf '%s\n' "$@" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# Waits until device $1's decisions are exactly "$2" (from sorted_ids). Changes made behind
# the server's back are noticed by its repository watcher every 10 s (crates/server/src/
# decide.rs), so this polls, 40 s at most; returns 1 then, with the last answer in `seen`.
wait_decided() {
  local key=$1 want=$2 deadline=$((SECONDS + 40))
  seen=$(decided "$key" || true)
  while [[ $seen != "$want" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
    seen=$(decided "$key" || true)
  done
}

# Builds `greet` version $1, whose EXECUTE appends "greet $1" to $out/greet; prints its ID.
build_greet() {
  local version=$1
  mkdir -p "$out" "$payloads/greet-$version"
  printf '#!/bin/sh\necho "greet %s" >>"%s"\n' "$version" "$out/greet" >"$payloads/greet-$version/install.sh"
  build "$payloads/greet-$version" --name greet --version "$version" --priority 1 --execute "sh install.sh"
}

# The lines of $out/greet joined with "|" ("" when the file does not exist).
greet_marker() {
  if [[ -f $out/greet ]]; then paste -sd '|' "$out/greet"; fi
}

# Scenario 9, before the agent runs: greet 1.0 is built and is not offered; `greet` is added
# by name to groups/default through the admin API and is then asked for at once, without an
# assignment. Sets id_greet1, and greet9_problem (what went wrong, "" if nothing).
greet_add_to_default() {
  local device_key=$1 before after
  id_greet1=$(build_greet 1.0)
  greet9_problem=
  # Only the package exists: nothing asks for it (the recorded-packages catalog may not even
  # know it yet; either way it must not be decided).
  before=$(decided "$device_key" || true)
  [[ " $before " != *" $id_greet1 "* ]] ||
    greet9_problem+="before the group edit, the decisions already held greet 1.0 ($before); "
  api POST /api/v1/groups/default/items '{"add":["greet"]}' >"$work/group-add.json" ||
    greet9_problem+="POST /api/v1/groups/default/items failed: $(cat "$work/group-add.json"); "
  # The edit takes effect at once: no wait here.
  after=$(decided "$device_key" || true)
  [[ $after == "$id_greet1" ]] ||
    greet9_problem+="right after the group edit the decisions are [$after], want [$id_greet1]; "
  step "greet 1.0 is $id_greet1, in groups/default (decisions [$after])"
}

# Scenario 9, after the agent's run: greet 1.0 succeeded once, without an assignment.
check_greet_first() {
  local marker
  marker=$(greet_marker)
  [[ $marker == "greet 1.0" ]] || greet9_problem+="the marker holds [$marker], want [greet 1.0]; "
  check "9 group item, no assignment" "$id_greet1" SUCCESS "${greet9_problem%; }"
}

# Scenario 10, before the agent runs: greet 2.0 is built (a new ID). Sets id_greet2 and
# greet10_problem. The caller may change more behind the server's back, then calls
# wait_newer.
greet_build_newer() {
  id_greet2=$(build_greet 2.0)
  greet10_problem=
  [[ $id_greet2 != "$id_greet1" ]] || greet10_problem+="greet 2.0 got greet 1.0's ID $id_greet1; "
}

# Waits until the server noticed greet 2.0 (and whatever else made device $1's decisions
# greet 2.0 plus the IDs $2…): greet 2.0 alone of greet's versions, the highest. Returns 1
# after 40 s, with what is wrong in `late` (also added to greet10_problem).
wait_newer() {
  local device_key=$1 want waited=$SECONDS
  shift
  want=$(sorted_ids "$id_greet2" "$@")
  late=
  if wait_decided "$device_key" "$want"; then
    step "greet 2.0 is $id_greet2; decisions [$seen] after $((SECONDS - waited)) s"
  else
    late="40 s after the change, the decisions are [$seen], want [$want]"
    greet10_problem+="$late; "
    return 1
  fi
}

# Scenario 10, after the agent's run: greet 2.0 succeeded, and 1.0 did not run again (the
# marker has one line per run; greet 1.0's statistics still count one result).
check_greet_newer() {
  local marker code1
  marker=$(greet_marker)
  [[ $marker == "greet 1.0|greet 2.0" ]] ||
    greet10_problem+="the marker holds [$marker], want [greet 1.0|greet 2.0]; "
  code1=$(code_of "$id_greet1")
  [[ $code1 == SUCCESS ]] || greet10_problem+="greet 1.0 ($id_greet1) now has $code1, want SUCCESS once; "
  check "10 newer version" "$id_greet2" SUCCESS "${greet10_problem%; }"
}
