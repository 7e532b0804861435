#!/usr/bin/env bash
# `slate check` and `slate help` end to end, and what `slate dlq` says with no
# system running: exit codes and output.
# usage: check_test.sh SLATE REPO
set -uo pipefail
slate=$1
repo=$2
failures=0

expect() {  # expect NAME WANT_CODE PATTERN -- CMD...
  local name=$1 want=$2 pattern=$3
  shift 4
  local out code
  out=$("$@" 2>&1)
  code=$?
  if [ "$code" -ne "$want" ]; then
    echo "FAIL $name: exit $code, want $want"; echo "$out"; failures=$((failures + 1)); return
  fi
  if ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$out"; failures=$((failures + 1)); return
  fi
  echo "ok   $name"
}

expect "example checks" 0 "^main: supervisor one_for_one, intensity 40 per 10s$" -- \
  "$slate" check "$repo/examples/telemetry/system.toml"
expect "spec example checks" 0 "samples: sensor -> filter" -- \
  "$slate" check "$repo/tests/spec/good/spec_example.toml"
expect "bad file exits 2" 2 "unknown_key.toml:7:1: component.a: unknown key 'restrat'" -- \
  "$slate" check "$repo/tests/spec/bad/unknown_key.toml"
expect "every error is printed" 2 "2 errors; nothing would start" -- \
  "$slate" check "$repo/tests/spec/bad/template_without_simple_one_for_one.toml"
expect "missing file exits 2" 2 "cannot read" -- "$slate" check /nonexistent.toml
expect "warnings do not fail" 0 "warning: component.a: significant has no effect" -- \
  "$slate" check "$repo/tests/spec/bad/significant_under_never.toml"
expect "help lists every verb" 0 "shutdown +stop the whole system" -- "$slate" --help
for verb in run check status events logs start stop restart kill update revert dlq shutdown top chaos; do
  expect "help $verb" 0 "slate $verb" -- "$slate" help "$verb"
  expect "$verb --help" 0 "slate $verb" -- "$slate" "$verb" --help
done
expect "dlq is available" 0 "dlq +list, export, requeue or purge a channel's dead letters$" -- \
  "$slate" --help
expect "dlq needs a channel" 2 "CHANNEL is required" -- "$slate" dlq
expect "dlq bad action exits 2" 2 "unknown action 'frob' \\(list, export, requeue, purge\\)" -- \
  "$slate" dlq stream frob --state-dir /nonexistent
expect "dlq purge needs an id" 2 "purge needs the ID of a dead letter, or --all" -- \
  "$slate" dlq stream purge --state-dir /nonexistent
expect "dlq with no system exits 1" 1 "slate dlq stream: no system is running at /nonexistent" -- \
  "$slate" dlq stream --state-dir /nonexistent
expect "unknown verb exits 2" 2 "slate: " -- "$slate" frobnicate
expect "missing argument exits 2" 2 "FILE is required" -- "$slate" check
expect "help of unknown verb exits 2" 2 "no verb 'nope'" -- "$slate" help nope

if [ "$failures" -ne 0 ]; then echo "$failures failed"; exit 1; fi
