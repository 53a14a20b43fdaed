#!/bin/bash
# Re-records tests/nginx_golden/recorded-*.txt from a real nginx (needs root, nginx, curl).
# nginx runs with one worker inside a private network namespace on its loopback; backends
# a..d answer their own letter; requests are sequential. The namespace and the temporary
# directory are removed on exit. Usage: sudo ./record.sh > recorded-$(nginx -v 2>&1 | cut -d/ -f2).txt
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/lb-golden-XXXXXX)
NS=lb-golden-$$
mkdir -p "$DIR/tmp"
sed "s#@DIR@#$DIR#g" "$HERE/nginx.conf.in" > "$DIR/nginx.conf"
ip netns add "$NS" || exit 1
NGX=
cleanup() { [ -n "$NGX" ] && kill "$NGX" 2>/dev/null && wait "$NGX" 2>/dev/null; ip netns del "$NS"; rm -rf "$DIR"; }
trap cleanup EXIT
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" nginx -c "$DIR/nginx.conf" &
NGX=$!
for _ in $(seq 1 50); do ip netns exec "$NS" curl -s -m 1 http://127.0.0.1:8081/ >/dev/null && break; sleep 0.1; done
get() { ip netns exec "$NS" curl -s -m 2 "$@" | tr -d "\n"; }
seqof() { local out=""; for _ in $(seq 1 "$2"); do out+=$(get "http://127.0.0.1:8080$1"); done; echo "$1 $out"; }
seqof /rr/ 14
seqof /rr2/ 12
seqof /lc/ 12
for o in $(seq 0 15); do
  echo "ip 127.0.$o.1 $(get --interface 127.0.$o.1 http://127.0.0.1:8080/ip/)$(get --interface 127.0.$o.1 http://127.0.0.1:8080/ip/)  ipw $(get --interface 127.0.$o.1 http://127.0.0.1:8080/ipw/)"
done
for k in a b c foo bar baz user1 user2 user3 user4 user5 user6 /index.html 42 x y; do
  echo "hash $k $(get "http://127.0.0.1:8080/hash/?k=$k") hashd $(get "http://127.0.0.1:8080/hashd/?k=$k") chash $(get "http://127.0.0.1:8080/chash/?k=$k") chashd $(get "http://127.0.0.1:8080/chashd/?k=$k")"
done
# Passive health timeline: b (port 8099) refuses connections. Three bursts of 6 requests,
# 3.5 s apart (fail_timeout=2s, nginx compares whole seconds); one line per request with
# $upstream_addr (the attempts in order).
for burst in 1 2 3; do
  for _ in $(seq 1 6); do get http://127.0.0.1:8080/fail/ >/dev/null; done
  [ "$burst" -lt 3 ] && sleep 3.5
done
sleep 0.2
while read -r line; do
  echo "fail $line" | sed 's/127.0.0.1:8081/a/g; s/127.0.0.1:8099/b/g'
done < "$DIR/fail.log"

