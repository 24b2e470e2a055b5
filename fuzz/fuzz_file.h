/*
 * fuzz_file.h — for fuzz targets whose parser reads a file: the input is
 * written to one file per process under /tmp, rewritten for every input
 * and removed at exit.  Included by one target each (static state).
 */
#ifndef KURA_FUZZ_FILE_H
#define KURA_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_file_path[64];

static void fuzz_file_remove(void)
{
	if (fuzz_file_path[0] != '\0')
		unlink(fuzz_file_path);
}

/* The path of a file holding data (name: e.g. "config.ini"); NULL when it
 * cannot be written. */
static const char *fuzz_file_write(const char *name, const uint8_t *data, size_t size)
{
	if (fuzz_file_path[0] == '\0') {
		snprintf(fuzz_file_path, sizeof(fuzz_file_path), "/tmp/kura-fuzz-%d-%s",
			 (int)getpid(), name);
		atexit(fuzz_file_remove);
	}
	FILE *f = fopen(fuzz_file_path, "we");
	if (f == NULL)
		return NULL;
	size_t n = fwrite(data, 1, size, f);
	if (fclose(f) != 0 || n != size)
		return NULL;
	return fuzz_file_path;
}

#endif
