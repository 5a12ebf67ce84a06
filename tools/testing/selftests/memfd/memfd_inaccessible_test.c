// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_inaccessible_test: the contract of MFD_INACCESSIBLE, one TAP line
 * per rule.
 *
 * An MFD_INACCESSIBLE memfd is a shmem file that userspace cannot read,
 * write, map or reopen. Its size is set once, by ftruncate to a page-aligned
 * size; fallocate allocates unevictable pages within that size and
 * PUNCH_HOLE | KEEP_SIZE frees them; its only seal is F_SEAL_SEAL. The flag
 * is served by memfd_inaccessible.ko: each such memfd pins the module, and
 * without the module the flag is EINVAL.
 *
 * Runs as root with the module loaded; MFD_INACCESSIBLE_KO must name the
 * module's .ko, which the test unloads and loads again.
 */
#define _GNU_SOURCE
#include <linux/memfd.h>	/* before sys/mman.h: glibc defers to it */
#include <linux/falloc.h>
#include <linux/magic.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../kselftest.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL		0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC		0x0010U
#endif
#ifndef MFD_INACCESSIBLE
#define MFD_INACCESSIBLE	0x0020U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC		0x0020
#endif

#define MODULE_NAME		"memfd_inaccessible"
#define SIZE_PAGES		16

static long page_size;

static int memfd(unsigned int flags)
{
	return syscall(__NR_memfd_create, "x", flags);
}

static const char *errname(int err)
{
	static char buf[32];

	switch (err) {
	case EPERM:		return "EPERM";
	case ENOENT:		return "ENOENT";
	case EBADF:		return "EBADF";
	case EACCES:		return "EACCES";
	case EBUSY:		return "EBUSY";
	case EEXIST:		return "EEXIST";
	case EINVAL:		return "EINVAL";
	case EFBIG:		return "EFBIG";
	case ENOSPC:		return "ENOSPC";
	case EOPNOTSUPP:	return "EOPNOTSUPP";
	case EWOULDBLOCK:	return "EWOULDBLOCK";
	}
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

/*
 * @ret is what a call returned, with errno as it left it: it must have
 * failed with @err, or succeeded (ret >= 0) if @err is 0. Says why if not.
 */
static bool expect_errno(long ret, int err, const char *what)
{
	int e = errno;

	if (!err && ret >= 0)
		return true;
	if (err && ret == -1 && e == err)
		return true;
	if (ret >= 0)
		ksft_print_msg("%s: succeeded (%ld), expected %s\n", what, ret, errname(err));
	else
		ksft_print_msg("%s: failed with %s, expected %s\n", what, errname(e),
			       err ? errname(err) : "success");
	return false;
}

static bool expect_size(int fd, long pages, const char *what)
{
	struct stat st;

	if (fstat(fd, &st)) {
		ksft_print_msg("%s: fstat: %s\n", what, errname(errno));
		return false;
	}
	if (st.st_size == pages * page_size)
		return true;
	ksft_print_msg("%s: size is %lld bytes, expected %ld\n", what,
		       (long long)st.st_size, pages * page_size);
	return false;
}

/* A fresh MFD_INACCESSIBLE memfd of @pages, allocated if @allocate; -1 if not. */
static int new_memfd(long pages, bool allocate)
{
	int fd = memfd(MFD_INACCESSIBLE);

	if (!expect_errno(fd, 0, "setup: memfd_create(MFD_INACCESSIBLE)"))
		return -1;
	if ((pages && !expect_errno(ftruncate(fd, pages * page_size), 0, "setup: ftruncate")) ||
	    (allocate && !expect_errno(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, pages * page_size),
				       0, "setup: fallocate"))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Unevictable from /proc/meminfo, in kB, brought up to date: new pages wait
 * in a per-CPU LRU batch before they are counted, and per-CPU vmstat deltas
 * reach /proc/meminfo only periodically. The test runs pinned to one CPU, so
 * mlock() drains the batch its pages went to (it calls lru_add_drain(), as
 * munmap() does on 6.12 but not on every kernel), and writing vm.stat_refresh
 * folds the deltas.
 */
static long unevictable_kb(void)
{
	void *p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[128];
	long kb = -1;
	FILE *f;
	int fd;

	if (p == MAP_FAILED || mlock(p, page_size))
		ksft_print_msg("mlock: %s; Unevictable may lag\n", errname(errno));
	if (p != MAP_FAILED)
		munmap(p, page_size);
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1)
		ksft_print_msg("vm.stat_refresh: %s; Unevictable may lag\n", errname(errno));
	if (fd >= 0)
		close(fd);

	f = fopen("/proc/meminfo", "r");
	if (!f)
		ksft_exit_fail_msg("cannot open /proc/meminfo: %s\n", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Unevictable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0)
		ksft_exit_fail_msg("no Unevictable in /proc/meminfo\n");
	return kb;
}

static long pages_kb(long pages)
{
	return pages * page_size / 1024;
}

/* Unevictable moved by at least 90% of @pages: grew if @pages > 0, else shrank. */
static bool expect_moved(long before, long after, long pages, const char *what)
{
	long want = pages_kb(pages), moved = after - before;

	ksft_print_msg("%s: Unevictable %ld -> %ld kB (%+ld kB, %+ld kB expected)\n",
		       what, before, after, moved, want);
	return pages > 0 ? moved >= want * 9 / 10 : moved <= want * 9 / 10;
}

/* 1, 2: which flags memfd_create() takes with MFD_INACCESSIBLE. */
static const struct flag_row {
	const char *rule;
	unsigned int flags;
	int err;
	unsigned int seals;	/* on success, seals that must be set */
} flag_rows[] = {
	{ "memfd_create(MFD_INACCESSIBLE) works", MFD_INACCESSIBLE, 0, 0 },
	{ "memfd_create(MFD_INACCESSIBLE | MFD_CLOEXEC) works, close-on-exec",
	  MFD_INACCESSIBLE | MFD_CLOEXEC, 0, 0 },
	{ "MFD_INACCESSIBLE | MFD_ALLOW_SEALING -> EINVAL",
	  MFD_INACCESSIBLE | MFD_ALLOW_SEALING, EINVAL, 0 },
	{ "MFD_INACCESSIBLE | MFD_HUGETLB -> EINVAL", MFD_INACCESSIBLE | MFD_HUGETLB, EINVAL, 0 },
	{ "MFD_INACCESSIBLE | MFD_EXEC -> EINVAL", MFD_INACCESSIBLE | MFD_EXEC, EINVAL, 0 },
	{ "MFD_INACCESSIBLE | MFD_NOEXEC_SEAL -> EINVAL",
	  MFD_INACCESSIBLE | MFD_NOEXEC_SEAL, EINVAL, 0 },
	{ "memfd_create(MFD_NOEXEC_SEAL) unchanged: works, F_SEAL_EXEC set",
	  MFD_NOEXEC_SEAL, 0, F_SEAL_EXEC },
	{ "memfd_create(0) unchanged: works", 0, 0, 0 },
};

static void check_flags(const struct flag_row *r)
{
	int fd = memfd(r->flags), fdflags, seals;
	bool ok = expect_errno(fd, r->err, r->rule);

	if (fd >= 0 && ok) {
		fdflags = fcntl(fd, F_GETFD);
		seals = fcntl(fd, F_GET_SEALS);
		if (!(fdflags & FD_CLOEXEC) != !(r->flags & MFD_CLOEXEC)) {
			ksft_print_msg("FD_CLOEXEC is %sset\n", fdflags & FD_CLOEXEC ? "" : "not ");
			ok = false;
		}
		if (seals < 0 || (seals & r->seals) != r->seals) {
			ksft_print_msg("F_GET_SEALS: %#x, must include %#x\n", seals, r->seals);
			ok = false;
		}
	}
	if (fd >= 0)
		close(fd);
	ksft_test_result(ok, "%s\n", r->rule);
}

/* 1: what the new file is. */
static void check_file(void)
{
	char path[64], link[256] = "";
	struct statfs sfs;
	struct stat st;
	int fd;

	fd = new_memfd(0, false);
	ksft_test_result(fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && !st.st_size,
			 "fstat: a regular file of size 0\n");
	if (fd >= 0)
		close(fd);

	fd = new_memfd(0, false);
	ksft_test_result(fd >= 0 && !fstatfs(fd, &sfs) && sfs.f_type == TMPFS_MAGIC,
			 "fstatfs: TMPFS_MAGIC (a shmem file)\n");
	if (fd >= 0)
		close(fd);

	fd = new_memfd(0, false);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fd >= 0 && readlink(path, link, sizeof(link) - 1) < 0)
		ksft_print_msg("readlink %s: %s\n", path, errname(errno));
	ksft_print_msg("readlink: \"%s\"\n", link);
	ksft_test_result(!strncmp(link, "/memfd:x", 8), "readlink: starts with \"/memfd:x\"\n");
	if (fd >= 0)
		close(fd);
}

/* 3: no read, write or mmap, whether or not the memfd has a size and pages. */
enum op { OP_READ, OP_PREAD, OP_READV, OP_WRITE, OP_PWRITE, OP_MMAP };

static const struct access_row {
	const char *rule;
	enum op op;
	int prot, flags;
} access_rows[] = {
	{ "read -> EPERM", OP_READ, 0, 0 },
	{ "pread -> EPERM", OP_PREAD, 0, 0 },
	{ "readv -> EPERM", OP_READV, 0, 0 },
	{ "write -> EPERM", OP_WRITE, 0, 0 },
	{ "pwrite -> EPERM", OP_PWRITE, 0, 0 },
	{ "mmap PROT_READ, MAP_SHARED -> EPERM", OP_MMAP, PROT_READ, MAP_SHARED },
	{ "mmap PROT_READ, MAP_PRIVATE -> EPERM", OP_MMAP, PROT_READ, MAP_PRIVATE },
	{ "mmap PROT_READ | PROT_WRITE, MAP_SHARED -> EPERM",
	  OP_MMAP, PROT_READ | PROT_WRITE, MAP_SHARED },
	{ "mmap PROT_READ | PROT_WRITE, MAP_PRIVATE -> EPERM",
	  OP_MMAP, PROT_READ | PROT_WRITE, MAP_PRIVATE },
};

static long do_access(int fd, const struct access_row *r, char *buf)
{
	struct iovec iov = { .iov_base = buf, .iov_len = page_size };
	void *p;

	switch (r->op) {
	case OP_READ:	return read(fd, buf, page_size);
	case OP_PREAD:	return pread(fd, buf, page_size, 0);
	case OP_READV:	return readv(fd, &iov, 1);
	case OP_WRITE:	return write(fd, buf, page_size);
	case OP_PWRITE:	return pwrite(fd, buf, page_size, 0);
	case OP_MMAP:
		p = mmap(NULL, page_size, r->prot, r->flags, fd, 0);
		if (p == MAP_FAILED)
			return -1;
		munmap(p, page_size);
		return 0;
	}
	return -1;
}

static void check_access(const struct access_row *r, bool allocated)
{
	const char *when = allocated ? "16 pages allocated" : "size 0";
	int fd = new_memfd(allocated ? SIZE_PAGES : 0, allocated);
	char *buf = calloc(1, page_size);
	bool ok = fd >= 0 && buf && expect_errno(do_access(fd, r, buf), EPERM, r->rule);

	ksft_test_result(ok, "%s (%s)\n", r->rule, when);
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* 4: reopening through /proc would get around all of the above. */
static void check_reopen(int flags, const char *rule)
{
	int fd = new_memfd(SIZE_PAGES, false), fd2 = -1;
	char path[64];
	bool ok = false;

	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fd2 = open(path, flags);
		ok = expect_errno(fd2, EPERM, rule);
	}
	ksft_test_result(ok, "%s\n", rule);
	if (fd2 >= 0)
		close(fd2);
	if (fd >= 0)
		close(fd);
}

/* 5: sealed against more seals. */
static void check_seals(void)
{
	int fd = new_memfd(0, false), seals = -1;

	if (fd >= 0)
		seals = fcntl(fd, F_GET_SEALS);
	if (seals != F_SEAL_SEAL)
		ksft_print_msg("F_GET_SEALS: %#x\n", seals);
	ksft_test_result(seals == F_SEAL_SEAL, "F_GET_SEALS == F_SEAL_SEAL\n");
	if (fd >= 0)
		close(fd);

	fd = new_memfd(0, false);
	ksft_test_result(fd >= 0 && expect_errno(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM,
						 "F_ADD_SEALS"),
			 "F_ADD_SEALS(F_SEAL_WRITE) -> EPERM\n");
	if (fd >= 0)
		close(fd);
}

/* 6: the size is set once, page-aligned. In order, on one memfd. */
static const struct truncate_row {
	const char *rule;
	long pages, bytes;	/* ftruncate to pages * page_size + bytes */
	int err;
	long size_after;	/* pages */
} truncate_rows[] = {
	{ "ftruncate 0 -> 1 page + 1 byte (unaligned) -> EINVAL, size stays 0", 1, 1, EINVAL, 0 },
	{ "ftruncate 0 -> 16 pages works", SIZE_PAGES, 0, 0, SIZE_PAGES },
	{ "ftruncate 16 -> 32 pages -> EPERM, size stays", 32, 0, EPERM, SIZE_PAGES },
	{ "ftruncate 16 -> 8 pages -> EPERM, size stays", 8, 0, EPERM, SIZE_PAGES },
	{ "ftruncate 16 -> 0 -> EPERM, size stays", 0, 0, EPERM, SIZE_PAGES },
	{ "ftruncate 16 -> 16 pages (same size) -> EPERM", SIZE_PAGES, 0, EPERM, SIZE_PAGES },
};

static void check_truncate(void)
{
	int fd = new_memfd(0, false);
	const struct truncate_row *r;
	bool ok;

	for (r = truncate_rows; r < truncate_rows + ARRAY_SIZE(truncate_rows); r++) {
		ok = fd >= 0 &&
		     expect_errno(ftruncate(fd, r->pages * page_size + r->bytes), r->err, r->rule);
		ok = fd >= 0 && expect_size(fd, r->size_after, r->rule) && ok;
		ksft_test_result(ok, "%s\n", r->rule);
	}
	if (fd >= 0)
		close(fd);
}

/* 7: fallocate allocates unevictable pages; KEEP_SIZE is the same. */
static void check_allocate(int mode, const char *rule)
{
	int fd = new_memfd(SIZE_PAGES, false);
	long before, ret;
	bool ok = false;

	if (fd >= 0) {
		before = unevictable_kb();
		ret = fallocate(fd, mode, 0, SIZE_PAGES * page_size);
		ok = expect_errno(ret, 0, rule);
		ok = expect_moved(before, unevictable_kb(), SIZE_PAGES, rule) && ok;
		ok = expect_size(fd, SIZE_PAGES, rule) && ok;
		close(fd);
	}
	ksft_test_result(ok, "%s\n", rule);
}

/* 7, 8: fallocate modes and ranges that are refused, each on a fresh memfd. */
static const struct falloc_row {
	const char *rule;
	long size;		/* pages */
	int mode;
	long off, off_bytes;	/* offset = off * page_size + off_bytes */
	long len, len_bytes;
	int err;
} falloc_rows[] = {
	{ "fallocate past the size (15 + 2 pages of 16) -> EINVAL",
	  SIZE_PAGES, 0, 15, 0, 2, 0, EINVAL },
	{ "fallocate KEEP_SIZE past the size (15 + 2 pages of 16) -> EINVAL",
	  SIZE_PAGES, FALLOC_FL_KEEP_SIZE, 15, 0, 2, 0, EINVAL },
	{ "fallocate of a size-0 memfd -> EINVAL", 0, 0, 0, 0, 1, 0, EINVAL },
	{ "fallocate ZERO_RANGE -> EOPNOTSUPP",
	  SIZE_PAGES, FALLOC_FL_ZERO_RANGE, 0, 0, 1, 0, EOPNOTSUPP },
	{ "fallocate COLLAPSE_RANGE -> EOPNOTSUPP",
	  SIZE_PAGES, FALLOC_FL_COLLAPSE_RANGE, 0, 0, 1, 0, EOPNOTSUPP },
	{ "fallocate INSERT_RANGE -> EOPNOTSUPP",
	  SIZE_PAGES, FALLOC_FL_INSERT_RANGE, 0, 0, 1, 0, EOPNOTSUPP },
	{ "fallocate PUNCH_HOLE without KEEP_SIZE -> EOPNOTSUPP",
	  SIZE_PAGES, FALLOC_FL_PUNCH_HOLE, 0, 0, 1, 0, EOPNOTSUPP },
	{ "punch hole at an unaligned offset (1 page + 1) -> EINVAL", SIZE_PAGES,
	  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, 1, 1, 0, EINVAL },
	{ "punch hole of an unaligned length (1 page + 1) -> EINVAL", SIZE_PAGES,
	  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 0, 1, 1, EINVAL },
	{ "punch hole past the size (15 + 2 pages of 16) -> EINVAL", SIZE_PAGES,
	  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 15, 0, 2, 0, EINVAL },
};

static void check_falloc_refused(const struct falloc_row *r)
{
	int fd = new_memfd(r->size, false);
	bool ok = false;

	if (fd >= 0) {
		ok = expect_errno(fallocate(fd, r->mode, r->off * page_size + r->off_bytes,
					    r->len * page_size + r->len_bytes), r->err, r->rule);
		ok = expect_size(fd, r->size, r->rule) && ok;
		close(fd);
	}
	ksft_test_result(ok, "%s\n", r->rule);
}

/* 8: punching a hole frees the pages. */
static void check_punch_frees(void)
{
	const char *rule = "punch hole of all 16 pages works, frees them";
	int fd = new_memfd(SIZE_PAGES, false);
	long base, full;
	bool ok = false;

	if (fd >= 0) {
		base = unevictable_kb();
		ok = expect_errno(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, SIZE_PAGES * page_size),
				  0, "fallocate");
		full = unevictable_kb();
		ok = expect_moved(base, full, SIZE_PAGES, "fallocate") && ok;
		ok = expect_errno(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					    SIZE_PAGES * page_size), 0, rule) && ok;
		ok = expect_moved(full, unevictable_kb(), -SIZE_PAGES, rule) && ok;
		ok = expect_size(fd, SIZE_PAGES, rule) && ok;
		close(fd);
	}
	ksft_test_result(ok, "%s\n", rule);
}

/* 9: closing the last reference frees the pages. */
static void check_close_frees(void)
{
	const char *rule = "close frees the pages (Unevictable back to the baseline)";
	long base = unevictable_kb(), after;
	int fd = new_memfd(64, true);
	bool ok = false;

	if (fd >= 0) {
		ok = expect_moved(base, unevictable_kb(), 64, "fallocate of 64 pages");
		close(fd);
		after = unevictable_kb();
		ksft_print_msg("after close: Unevictable %ld kB, baseline %ld kB\n", after, base);
		ok = after <= base + pages_kb(8) && ok;
	}
	ksft_test_result(ok, "%s\n", rule);
}

/* 10: the module serving the flag. */
static bool module_loaded(void)
{
	return !access("/sys/module/" MODULE_NAME, F_OK);
}

static long unload_module(void)
{
	return syscall(__NR_delete_module, MODULE_NAME, O_NONBLOCK);
}

static const char *const module_rules[] = {
	"module: unload refused while an MFD_INACCESSIBLE memfd is open",
	"module: unload works once the memfd is closed, an O_PATH reference left",
	"module: unloaded, the O_PATH reference's inode works: fstat size, truncate EPERM, reopen EPERM",
	"module: MFD_INACCESSIBLE -> EINVAL while unloaded",
	"module: memfd_create(0) works while unloaded",
	"module: reloaded, MFD_INACCESSIBLE works again",
};

static void check_module(void)
{
	const char *path = getenv("MFD_INACCESSIBLE_KO");
	char path_buf[64];
	int fd, opath, ko, e;
	long ret;
	bool ok;

	if (!path || !*path) {
		/* The runner always sets it: not having it is a failure. */
		ksft_print_msg("MFD_INACCESSIBLE_KO is not set: cannot reload the module\n");
		for (size_t i = 0; i < ARRAY_SIZE(module_rules); i++)
			ksft_test_result_fail("%s\n", module_rules[i]);
		return;
	}

	/*
	 * An O_PATH open of /proc/self/fd/N holds the inode, not the file: it
	 * outlives the file, and so the module, which must have left nothing
	 * of itself in the inode.
	 */
	fd = new_memfd(SIZE_PAGES, true);
	opath = -1;
	if (fd >= 0) {
		snprintf(path_buf, sizeof(path_buf), "/proc/self/fd/%d", fd);
		opath = open(path_buf, O_PATH);
	}
	ret = unload_module();
	e = errno;
	ok = fd >= 0 && opath >= 0 && ret == -1 && (e == EWOULDBLOCK || e == EBUSY);
	ksft_test_result(ok, "%s (%s)\n", module_rules[0], ret ? errname(e) : "it unloaded");
	if (fd >= 0)
		close(fd);

	ksft_test_result(expect_errno(unload_module(), 0, "delete_module") && !module_loaded(),
			 "%s\n", module_rules[1]);

	ok = false;
	if (opath >= 0) {
		struct stat st;

		snprintf(path_buf, sizeof(path_buf), "/proc/self/fd/%d", opath);
		ok = expect_errno(fstat(opath, &st), 0, "fstat(O_PATH fd)");
		if (ok && st.st_size != SIZE_PAGES * page_size) {
			ksft_print_msg("fstat: size %lld, wanted %ld\n", (long long)st.st_size,
				       SIZE_PAGES * page_size);
			ok = false;
		}
		ok = expect_errno(truncate(path_buf, 0), EPERM, "truncate(O_PATH path)") && ok;
		fd = open(path_buf, O_RDWR);
		ok = expect_errno(fd, EPERM, "open(O_PATH path, O_RDWR)") && ok;
		if (fd >= 0)
			close(fd);
		close(opath);
	}
	ksft_test_result(ok, "%s\n", module_rules[2]);

	fd = memfd(MFD_INACCESSIBLE);
	ksft_test_result(expect_errno(fd, EINVAL, module_rules[3]), "%s\n", module_rules[3]);
	if (fd >= 0)
		close(fd);

	fd = memfd(0);
	ksft_test_result(expect_errno(fd, 0, module_rules[4]), "%s\n", module_rules[4]);
	if (fd >= 0)
		close(fd);

	ok = true;
	if (!module_loaded()) {
		ko = open(path, O_RDONLY | O_CLOEXEC);
		ok = expect_errno(ko, 0, path) &&
		     expect_errno(syscall(__NR_finit_module, ko, "", 0), 0, "finit_module");
		if (ko >= 0)
			close(ko);
	}
	fd = memfd(MFD_INACCESSIBLE);
	ok = expect_errno(fd, 0, module_rules[5]) && ok;
	ksft_test_result(ok, "%s\n", module_rules[5]);
	if (fd >= 0)
		close(fd);
}

/* Keeps this task's new pages in one CPU's LRU batch; see unevictable_kb(). */
static void pin_to_this_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set))
		ksft_print_msg("cannot pin to a CPU (%s); Unevictable may lag\n",
			       errname(errno));
}

int main(void)
{
	size_t i;
	int fd;

	page_size = sysconf(_SC_PAGESIZE);
	ksft_print_header();

	fd = memfd(MFD_INACCESSIBLE);
	if (fd < 0)
		ksft_exit_fail_msg("memfd_create(MFD_INACCESSIBLE): %s; is %s.ko loaded?\n",
				   errname(errno), MODULE_NAME);
	close(fd);
	pin_to_this_cpu();

	ksft_set_plan(ARRAY_SIZE(flag_rows) + 3 + 2 * ARRAY_SIZE(access_rows) + 2 + 2 +
		      ARRAY_SIZE(truncate_rows) + 2 + ARRAY_SIZE(falloc_rows) + 2 +
		      ARRAY_SIZE(module_rules));

	for (i = 0; i < ARRAY_SIZE(flag_rows); i++)
		check_flags(&flag_rows[i]);
	check_file();
	for (i = 0; i < ARRAY_SIZE(access_rows); i++)
		check_access(&access_rows[i], false);
	for (i = 0; i < ARRAY_SIZE(access_rows); i++)
		check_access(&access_rows[i], true);
	check_reopen(O_RDWR, "open(/proc/self/fd/N, O_RDWR) -> EPERM");
	check_reopen(O_RDONLY, "open(/proc/self/fd/N, O_RDONLY) -> EPERM");
	check_seals();
	check_truncate();
	check_allocate(0, "fallocate of 16 pages works, Unevictable grows by them");
	check_allocate(FALLOC_FL_KEEP_SIZE,
		       "fallocate KEEP_SIZE of 16 pages works, Unevictable grows");
	for (i = 0; i < ARRAY_SIZE(falloc_rows); i++)
		check_falloc_refused(&falloc_rows[i]);
	check_punch_frees();
	check_close_frees();
	/* Last: it unloads and reloads the module. */
	check_module();

	ksft_finished();
}
