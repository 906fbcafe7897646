#!/usr/bin/env bash
# FUSE view benchmark (issue 3). Not a test: it prints figures; docs/performance.md records them.
#
#   bench/fuse.sh            # everything (N=50000 packages, 100 snapshots, a 1 GiB file)
#   N=5000 SNAPSHOTS=20 BIG_MB=256 bench/fuse.sh     # a quicker run
#   STEPS="2 4" bench/fuse.sh                          # only some of the steps below
#
# Measures, each in one run (fsync-bound steps vary a lot between runs here, see NOTES.md):
#  1. sequential read of a large pool file through the mount vs directly (dd bs=1M, warm: the
#     file is read right before each measurement, as DAMON evicts idle page cache), with
#     passthrough and with -o nopassthrough (first read and re-read);
#  2. `apt-get update` (sandboxed as _apt, fresh lists each time) from the mount vs from a
#     `halo export` of the same snapshot;
#  3. `find -printf '%s %T@'` (one lstat per entry) over the channel's tree of N packages:
#     caches dropped and a fresh mount (cold), then again (warm), against the same walk of the
#     export on ext4 (caches dropped too), with drop_caches 3 and 2 (see below); medians of
#     WALKS (3) rounds;
#  4. repofs RSS with SNAPSHOTS snapshots of N packages, at stages of use.
# Synthetic packages come from bench/gen_debs.py; the snapshots beyond the first differ by one
# package in a small second dist, so each of them holds all N packages (the big component is
# rendered once and shared, as the store does for unchanged components).
# Needs root, /dev/fuse, dpkg-deb, apt-get, python3; builds target/release first if missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# BENCH_PROFILE=debug runs the debug binaries (the CI smoke run, tests/tests/bench_scripts.rs).
PROFILE=${BENCH_PROFILE:-release}
HALO=$TARGET/$PROFILE/halo
REPOFS=$TARGET/$PROFILE/repofs
N=${N:-50000}
SNAPSHOTS=${SNAPSHOTS:-100}
BIG_MB=${BIG_MB:-1024}
RUNS=${RUNS:-5}
STEPS=" ${STEPS:-1 2 3 4} "
step() { [[ $STEPS == *" $1 "* ]]; }

[ -x "$HALO" ] && [ -x "$REPOFS" ] || (cd "$ROOT" && cargo build --profile "${PROFILE/debug/dev}" --workspace --bins)
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/halo-fuse-bench.XXXXXX")
chmod 755 "$WORK"
export HALO_STORE=$WORK/store
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for m in "$WORK"/mnt*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "print(f'{$2 - $1:.4f}')"; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
rss() { awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END {printf "RSS %.1f MiB (peak %.1f MiB)", r/1024, h/1024}' "/proc/$1/status"; }

# Mounts $1 on $2 in the foreground (background job), waits until it answers; sets MOUNT_PID.
mount_view() {
    local store=$1 dir=$2 opts=${3:-allow_other}
    mkdir -p "$dir"
    "$REPOFS" "$store" "$dir" -f -o "$opts" 2>>"$WORK/repofs.log" &
    MOUNT_PID=$!
    PIDS+=("$MOUNT_PID")
    for _ in $(seq 500); do
        mountpoint -q "$dir" && [ -d "$dir/snapshots" ] && return 0
        sleep 0.02
    done
    echo "mount of $dir did not come up" >&2
    cat "$WORK/repofs.log" >&2
    exit 1
}
unmount_view() { kill -TERM "$MOUNT_PID"; wait "$MOUNT_PID" || true; }

timed_read() { local t0; t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; elapsed "$t0" "$(now)"; }

if step 1; then
echo "== 1. sequential read of a ${BIG_MB} MiB pool file"
mkdir -p "$WORK/big/DEBIAN" "$WORK/big/usr/share/big"
printf 'Package: big\nVersion: 1\nArchitecture: all\nMaintainer: B <b@e>\nDescription: big\n big\n' \
    >"$WORK/big/DEBIAN/control"
head -c "${BIG_MB}M" /dev/urandom >"$WORK/big/usr/share/big/blob"
dpkg-deb --root-owner-group -Znone --build "$WORK/big" "$WORK/big_1_all.deb" >/dev/null
rm -rf "$WORK/big"
"$HALO" init >/dev/null
"$HALO" import --archive big --dist trusty --component main "$WORK/big_1_all.deb" >/dev/null
rm "$WORK/big_1_all.deb"
BIG_ID=$("$HALO" snapshot create | tail -n1)
BIG_PATH=big/pool/main/b/big/big_1_all.deb
BLOB=$(find "$HALO_STORE/pool" -type f -size +$((BIG_MB / 2))M | head -n1)
for opts in allow_other allow_other,nopassthrough; do
    mount_view "$HALO_STORE" "$WORK/mnt" "$opts"
    VIA=$WORK/mnt/snapshots/$BIG_ID/$BIG_PATH
    direct=() mounted=()
    first=$(timed_read "$VIA")
    for _ in $(seq "$RUNS"); do
        cat "$BLOB" >/dev/null
        direct+=("$(timed_read "$BLOB")")
        cat "$VIA" >/dev/null
        mounted+=("$(timed_read "$VIA")")
    done
    d=$(echo "${direct[*]}" | median)
    m=$(echo "${mounted[*]}" | median)
    echo "  -o $opts: direct ${d}s, mount ${m}s (first read through this mount ${first}s):" \
        "mount/direct throughput = $(ratio "$d" "$m")"
    unmount_view
done
rm -rf "$HALO_STORE"
fi

step 2 || step 3 || step 4 || exit 0
echo "== 2-4. $N packages, $SNAPSHOTS snapshots"
"$HALO" init >/dev/null
python3 "$ROOT/bench/gen_debs.py" "$WORK/debs" "$N" 1.0 >"$WORK/debs.list"
t0=$(now)
"$HALO" import --archive bench --dist trusty --component main --files-from "$WORK/debs.list" >/dev/null
echo "  import of $N packages: $(elapsed "$t0" "$(now)")s"
rm -rf "$WORK/debs"
FIRST=$("$HALO" snapshot create | tail -n1)
# trusty is gated (only accepted snapshots): the benchmark forces its one promotion.
"$HALO" promote --to trusty --snapshot "$FIRST" --force --reason "bench/fuse.sh" >/dev/null
t0=$(now)
for i in $(seq 2 "$SNAPSHOTS"); do
    deb=$(python3 "$ROOT/bench/gen_debs.py" "$WORK/extra" 1 "$i.0" "$i")
    "$HALO" import --archive bench --dist extra --component main "$deb" >/dev/null
    rm "$deb"
    "$HALO" snapshot create >/dev/null
done
echo "  $((SNAPSHOTS - 1)) more snapshots: $(elapsed "$t0" "$(now)")s"
"$HALO" export --snapshot "$FIRST" "$WORK/export" >/dev/null
SNAPS=$("$HALO" snapshot list | awk '{print $1}' | grep -E '^[0-9]{8}T')

apt_update() {
    local apt=$WORK/apt
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/apt.conf.d" "$apt/etc/preferences.d"
    echo "deb [signed-by=$HALO_STORE/keys/repo.gpg] file:$1 trusty main" >"$apt/etc/sources.list"
    : >"$apt/status"
    chmod -R a+rX "$apt"
    local t0
    t0=$(now)
    (cd "$apt" && apt-get -q -o Dir::Etc::SourceList="$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Parts="$apt/etc/apt.conf.d" -o Dir::Etc::PreferencesParts="$apt/etc/preferences.d" \
        -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Dir::State::status="$apt/status" \
        -o APT::Architecture=amd64 -o Debug::NoLocking=1 -o Acquire::Languages=none update >/dev/null)
    elapsed "$t0" "$(now)"
}

if step 2; then
echo "-- 2. apt-get update, $N packages"
mount_view "$HALO_STORE" "$WORK/mnt"
FUSE_PID=$MOUNT_PID
echo "  repofs after mount: $(rss "$FUSE_PID")"
from_mount=() from_export=()
for _ in $(seq "$RUNS"); do
    from_export+=("$(apt_update "$WORK/export/bench")")
    from_mount+=("$(apt_update "$WORK/mnt/channels/trusty/bench")")
done
e=$(echo "${from_export[*]}" | median)
m=$(echo "${from_mount[*]}" | median)
echo "  export ${e}s, mount ${m}s: mount/export time = $(ratio "$m" "$e")"
echo "  repofs after apt-get update: $(rss "$FUSE_PID")"
unmount_view
fi

mount_view "$HALO_STORE" "$WORK/mnt"
FUSE_PID=$MOUNT_PID
if step 3; then
echo "-- 3. find + lstat of every entry of the channel's tree, $N packages"
find_stat() { local t0; t0=$(now); find "$1" -printf '%s %T@\n' | wc -l >"$WORK/count"; elapsed "$t0" "$(now)"; }
# Cold, two ways, each before every cold walk on both sides: `drop=3` drops the page cache
# too (the disk is read again: the mount side then also reads the snapshot's manifest and
# component states), as for a staging mirror's first rsync after a reboot; `drop=2` drops
# only the dentry and inode caches (the disk blocks stay cached), which leaves the cost of
# the FUSE round trips and of building the tree.
unmount_view
for drop in 3 2; do
    cold_export=() warm_export=() cold_mount=() warm_mount=()
    for _ in $(seq "${WALKS:-3}"); do
        sync; echo "$drop" >/proc/sys/vm/drop_caches
        cold_export+=("$(find_stat "$WORK/export/bench")")
        warm_export+=("$(find_stat "$WORK/export/bench")")
        files=$(cat "$WORK/count")
        sync; echo "$drop" >/proc/sys/vm/drop_caches
        REPOFS_LOG=repofs::fs::catalog=debug mount_view "$HALO_STORE" "$WORK/mnt"
        cold_mount+=("$(find_stat "$WORK/mnt/channels/trusty/bench")")
        warm_mount+=("$(find_stat "$WORK/mnt/channels/trusty/bench")")
        if [ "$(cat "$WORK/count")" != "$files" ]; then
            echo "the mount shows $(cat "$WORK/count") entries, the export $files" >&2
            exit 1
        fi
        unmount_view
    done
    ce=$(echo "${cold_export[*]}" | median) we=$(echo "${warm_export[*]}" | median)
    cm=$(echo "${cold_mount[*]}" | median) wm=$(echo "${warm_mount[*]}" | median)
    tree_ms=$(grep -o 'ms=[0-9]*' "$WORK/repofs.log" | tail -n1 | cut -d= -f2)
    echo "  drop_caches=$drop, $files entries, medians of ${WALKS:-3}: export cold ${ce}s warm ${we}s;" \
        "mount cold ${cm}s (tree load ${tree_ms:-?} ms) warm ${wm}s"
    echo "  drop_caches=$drop: cold walk mount/export = $(ratio "$cm" "$ce"); warm $(ratio "$wm" "$we")"
done
mount_view "$HALO_STORE" "$WORK/mnt"
FUSE_PID=$MOUNT_PID
fi
step 4 || { unmount_view; exit 0; }

echo "-- 4. repofs memory with $SNAPSHOTS snapshots of $N packages (default trees=4)"
unmount_view
echo 2 >/proc/sys/vm/drop_caches
mount_view "$HALO_STORE" "$WORK/mnt"
FUSE_PID=$MOUNT_PID
echo "  fresh mount: $(rss "$FUSE_PID")"
ls -l "$WORK/mnt/snapshots"/*/ >/dev/null
echo "  after ls -l of every snapshot's root: $(rss "$FUSE_PID")"
apt_update "$WORK/mnt/channels/trusty/bench" >/dev/null
for s in $(echo "$SNAPS" | tail -n 2); do apt_update "$WORK/mnt/snapshots/$s/bench" >/dev/null; done
echo "  after apt-get update from 3 snapshots: $(rss "$FUSE_PID")"
find "$WORK/mnt/channels/trusty/" >/dev/null
echo "  after find over one tree (what rsync of a channel does): $(rss "$FUSE_PID")"
for s in $(echo "$SNAPS" | head -n 8); do find "$WORK/mnt/snapshots/$s" >/dev/null; done
echo "  after find over 8 snapshot trees: $(rss "$FUSE_PID")"
for s in $SNAPS; do find "$WORK/mnt/snapshots/$s" >/dev/null; done
echo "  after find over all $SNAPSHOTS snapshot trees: $(rss "$FUSE_PID")" \
    "(the kernel caches a dentry and inode per directory; repofs tracks each inode it holds)"
echo 2 >/proc/sys/vm/drop_caches
sleep 1
echo "  after the kernel dropped its dentry/inode caches: $(rss "$FUSE_PID")"
unmount_view
