#!/bin/bash
# Proves: retention runs continuously and deletes the oldest profiles first,
# by age (--retention 2h,0) and by total size (--retention 0,1KB), together
# with their trace index rows; newer profiles stay.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

T1=0123456789abcdef0123456789abcdef
T2=fedcba9876543210fedcba9876543210
now=$(date +%s)

# --- by age ------------------------------------------------------------------
DB=$WORK/age.db
start_collector "$DB" --retention 2h,0 --retention-interval 1s || finish
$MKPROFILE pprof "$WORK/old.pb.gz" --time $((now - 3 * 3600)) "old_func,main@$T1=100000000"
$MKPROFILE pprof "$WORK/new.pb.gz" --time $((now - 60)) "new_func,main@$T2=100000000"
check "an old profile is accepted" is 200 --data-binary @"$WORK/old.pb.gz" "$URL/ingest?name=aged&format=pprof"
check "a new profile is accepted" is 200 --data-binary @"$WORK/new.pb.gz" "$URL/ingest?name=aged&format=pprof"
rows() { sqlite3 "$1" "$2" 2>/dev/null; }
for i in $(seq 100); do [ "$(rows "$DB" 'SELECT COUNT(*) FROM profiles')" = 1 ] && break; sleep 0.1; done
check "within seconds only one profile is left" test "$(rows "$DB" 'SELECT COUNT(*) FROM profiles')" = 1
check "the old profile's trace is gone from the index" \
	test "$(rows "$DB" "SELECT COUNT(*) FROM trace_index WHERE trace_id = '$T1'")" = 0
check "querying the old time range finds nothing: 404" \
	is 404 "$URL/api/v1/profiles?service=aged&from=$((now - 4 * 3600))&until=$((now - 2 * 3600))"
ptop "$URL/api/v1/profiles?service=aged" >"$WORK/top"
check "the new profile is still served" has "$WORK/top" "new_func"
check "the collector logged the deletion" has "$CLOG" "retention: deleted 1 profiles"
stop_collector

# --- by size -------------------------------------------------------------------
DB=$WORK/size.db
start_collector "$DB" --retention 0,1KB --retention-interval 1s || finish
for i in $(seq 10); do
	$MKPROFILE pprof "$WORK/s$i.pb.gz" --time $((now - 1000 + 60 * i)) "size_func_$i,main=100000000"
	code --data-binary @"$WORK/s$i.pb.gz" "$URL/ingest?name=sized&format=pprof" >/dev/null
done
for i in $(seq 100); do
	[ "$(rows "$DB" 'SELECT total(size) <= 1024 FROM profiles')" = 1 ] && break
	sleep 0.1
done
check "the stored bytes came down to 1 KiB" \
	test "$(rows "$DB" 'SELECT total(size) <= 1024 FROM profiles')" = 1
kept=$(rows "$DB" 'SELECT COUNT(*) FROM profiles')
check "some profiles were kept ($kept of 10)" test "${kept:-0}" -ge 2 -a "${kept:-0}" -lt 10
ptop "$URL/api/v1/profiles?service=sized&from=$((now - 2000))" >"$WORK/stop"
check "the newest profile is kept" has "$WORK/stop" "size_func_10$"
check "the oldest profile went first" hasnt "$WORK/stop" "size_func_1$"
check "the database passes an integrity check" test "$(rows "$DB" 'PRAGMA integrity_check')" = ok
finish
