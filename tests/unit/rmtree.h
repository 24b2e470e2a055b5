/*
 * rmtree.h — remove a directory tree that a unit test or a fuzz target
 * made under /tmp.  Header-only (each test program and fuzz target is one
 * .c file); best effort: what cannot be removed stays behind.
 */
#ifndef KURA_TEST_RMTREE_H
#define KURA_TEST_RMTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int rmtree_entry(const char *path, const struct stat *st,
			       int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void rmtree(const char *dir)
{
	nftw(dir, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
