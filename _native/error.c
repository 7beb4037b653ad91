/*
 * Error objects.  Every step returns -1 and fills a struct diyc_error instead
 * of printing or exiting, so the caller decides what to do with it: the
 * parent raises it in Python, the child sends it to the parent (channel.c).
 * Everything here must be safe in the cloned child: no malloc, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "diyc.h"

size_t diyc_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int diyc_fail(struct diyc_error *err, const char *step, int errnum, const char *detail)
{
	diyc_strlcpy(err->step, step, sizeof(err->step));
	err->errnum = errnum;
	diyc_strlcpy(err->detail, detail ? detail : "", sizeof(err->detail));
	return -1;
}

/* root + path, where path is absolute inside the container. */
int diyc_path_join(char *dst, size_t size, const char *root, const char *path)
{
	size_t rl = strlen(root), pl;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	while (*path == '/')
		path++;
	pl = strlen(path);
	if (rl + 1 + pl + 1 > size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dst, root, rl);
	dst[rl] = '/';
	memcpy(dst + rl + 1, path, pl + 1);
	return 0;
}
