#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0-only
#
# /init of the Linux guest that gmem_linux_boot_test boots with all of its
# memory in one guest_memfd. It reports through the kernel log (the early
# serial console, the only console the guest has) and ends with a reboot,
# which the VMM sees as a reset through the keyboard controller.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc none /proc
mount -t sysfs none /sys

say() { echo "<2>GMEM_GUEST: $*" >/dev/kmsg; }

say "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"

# Memory: 32 MiB hashed as it is written, then read back, copied and read
# back again (rootfs is the guest's RAM): pages that lost what was written
# to them differ from the hash of the stream.
w=$(dd if=/dev/urandom bs=1M count=32 2>/dev/null | tee /a | md5sum | cut -d' ' -f1)
cp /a /b
a=$(md5sum /a | cut -d' ' -f1)
b=$(md5sum /b | cut -d' ' -f1)
size=$(stat -c %s /b)
if [ -n "$w" ] && [ "$w" = "$a" ] && [ "$a" = "$b" ] && [ "$size" = 33554432 ]; then
	say "memory ok $w"
else
	say "FAIL memory: written $w, read $a, copy $b ($size bytes)"
fi

# Time (from the clocksource) advances across a sleep (a timer interrupt).
t1=$(cut -d' ' -f1 /proc/uptime)
sleep 1
t2=$(cut -d' ' -f1 /proc/uptime)
if [ "$(echo "$t1 $t2" | awk '{ print ($2 - $1 >= 0.9) }')" = 1 ]; then
	say "time advanced $t1 -> $t2"
else
	say "FAIL time: $t1 -> $t2"
fi

# Steal time is written by KVM into guest memory; only reported.
say "steal $(awk '/^cpu / { print $9 }' /proc/stat)"
say "done"
reboot -f
