// SPDX-License-Identifier: GPL-2.0
/*
 * make insns: a phase marker for qemu-insn-count.c. The plugin starts a new
 * phase each time this program's entry runs; it is linked at a fixed
 * address (bench.sh) that no other guest code uses, and does nothing else.
 */
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\t"	/* exit(0) */
			 "xor %edi, %edi\n\t"
			 "syscall");
	__builtin_unreachable();
}
