# The unshare backend's set-up, run by root inside the new namespaces before the harness
# (`budgeteval.scoring.sandbox` passes this file's text to `/bin/sh -c`).
# $1: tmpfs size; $2: count N of Python directories to re-expose; then N directories; then the
# count M of directories to hide (not enterable by uid 65534); then M directories; then the command.
set -eu
size=$1; shift
count=$1; shift
expose=""
while [ "$count" -gt 0 ]; do expose="$expose
$1"; shift; count=$((count - 1)); done
count=$1; shift
hide=""
while [ "$count" -gt 0 ]; do hide="$hide
$1"; shift; count=$((count - 1)); done
# Stage read-only binds of the Python directories on a fresh /dev/shm before anything is covered:
# a virtual environment under /tmp, or an installation under a hidden /root, is moved back in place
# on top of the new mounts.
mount -t tmpfs -o "size=$size,mode=1777,nosuid,nodev" budgeteval-sandbox /dev/shm
index=0
printf '%s\n' "$expose" | while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  index=$((index + 1)); mkdir -p "/dev/shm/.expose$index"
  mount --bind "$dir" "/dev/shm/.expose$index"; mount -o remount,bind,ro "/dev/shm/.expose$index"
done
mount -t tmpfs -o "size=$size,mode=1777,nosuid,nodev" budgeteval-sandbox /tmp
for dir in /var/tmp /run/lock; do
  if [ -d "$dir" ]; then mount -t tmpfs -o "size=$size,mode=1777,nosuid,nodev" budgeteval-sandbox "$dir"; fi
done
# A directory to hide under /tmp (a 0700 `mktemp -d` folder holding a CI clone) is gone from the
# fresh /tmp: it is made again, hidden, and the Python directories below it are moved in after.
printf '%s\n' "$hide" | while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  mkdir -p "$dir"; mount -t tmpfs -o "size=1m,mode=0755,nosuid,nodev" budgeteval-hidden "$dir"
done
index=0
printf '%s\n' "$expose" | while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  index=$((index + 1)); mkdir -p "$dir"; mount --move "/dev/shm/.expose$index" "$dir"; rmdir "/dev/shm/.expose$index"
done
cd /tmp
"$@"
