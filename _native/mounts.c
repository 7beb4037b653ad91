/*
 * The filesystem half of container init: private propagation, the overlay
 * root, the OCI mount list, a minimal /dev, pivot_root, masked paths.
 *
 * Paths inside the new root are resolved with openat2(RESOLVE_IN_ROOT), so a
 * symlink in the image (say /proc -> /etc) is followed *inside* the rootfs
 * and can never redirect a mount onto the host.  Mounts then target the
 * resolved directory through /proc/self/fd/N.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diyc.h"

#define PATH_BUF 4096

/*
 * pivot_root refuses a new root whose parent mount is shared.  With a
 * shared rootfsPropagation, make just the mount that holds the rootfs (the
 * rootfs itself when it is a mount point, as containerd's is, else the
 * nearest mount above it; our own namespace's copy) private, as runc does:
 * mount(2) with MS_PRIVATE succeeds only on a mount point, so walk up until
 * one takes it.  The rootfs' bind onto itself then is private too.
 */
static int make_rootfs_parent_private(const char *rootfs, struct diyc_error *err)
{
	char dir[PATH_BUF];
	char *slash;

	if (strlen(rootfs) >= sizeof(dir))
		return diyc_fail(err, "make_root_private", ENAMETOOLONG, rootfs);
	strcpy(dir, rootfs);
	for (;;) {
		if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) == 0)
			return 0;
		if (errno != EINVAL || strcmp(dir, "/") == 0)
			return diyc_fail(err, "make_root_private", errno, dir);
		slash = strrchr(dir, '/');
		if (!slash)
			return diyc_fail(err, "make_root_private", EINVAL, rootfs);
		if (slash == dir)
			slash[1] = '\0';  /* the root itself */
		else
			*slash = '\0';
	}
}

/*
 * Cut the container's mounts off from the host's before making any: private
 * by default, so nothing propagates either way.  With a slave
 * rootfsPropagation the copy becomes the host's slave: mount events of the
 * host still arrive (through shared mounts), none of ours go back.  A shared
 * one keeps the copy in the host's peer groups, as runc does: that is what
 * a bidirectional volume (Kubernetes' mountPropagation) asks for, a mount
 * made in it inside the container appears on the host too.
 */
int make_root_private(const struct diyc_init *init, struct diyc_error *err)
{
	unsigned long p = init->rootfs_propagation;
	unsigned long flag = p & MS_SHARED ? MS_SHARED : p & MS_SLAVE ? MS_SLAVE : MS_PRIVATE;

	if (mount(NULL, "/", NULL, MS_REC | flag, NULL) < 0)
		return diyc_fail(err, "make_root_private", errno, NULL);
	if (flag != MS_SHARED)
		return 0;
	/* pivot_root refuses a shared current root (and shared parent or new
	 * root: see mount_rootfs): those single mounts go private, the ones
	 * below them stay in their peer groups */
	if (mount(NULL, "/", NULL, MS_PRIVATE, NULL) < 0)
		return diyc_fail(err, "make_root_private", errno, NULL);
	return make_rootfs_parent_private(init->rootfs, err);
}

/* After pivot_root: the propagation the spec asks for on the new root. */
int set_rootfs_propagation(const struct diyc_init *init, struct diyc_error *err)
{
	unsigned long p = init->rootfs_propagation;

	if (!p || (p & MS_SLAVE))
		return 0;  /* private or slave already, from make_root_private */
	if (mount(NULL, "/", NULL, p, NULL) < 0)
		return diyc_fail(err, "rootfs_propagation", errno, NULL);
	return 0;
}

static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/*
 * Open `path` inside the root as an O_PATH fd, creating missing directories
 * on the way (and the last component as an empty file when is_file).
 */
static int resolve_or_create(int rootfd, const char *path, int is_file)
{
	char prefix[PATH_BUF];
	size_t len = strlen(path), i;
	int fd = open_in_root(rootfd, path, O_PATH);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (len >= sizeof(prefix)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(prefix, path, len + 1);

	/* Walk the components: keep the deepest existing parent open, create the
	 * next one relative to it, so no component is resolved outside the root. */
	for (i = 1; i <= len; i++) {
		int parent, last = (i == len), r;
		char *name;

		if (!last && prefix[i] != '/')
			continue;
		prefix[i] = '\0';
		fd = open_in_root(rootfd, prefix, O_PATH);
		if (fd >= 0) {
			close(fd);
			if (!last)
				prefix[i] = '/';
			continue;
		}
		if (errno != ENOENT)
			return -1;
		name = strrchr(prefix, '/');
		*name = '\0';
		parent = open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
		*name++ = '/';
		if (parent < 0)
			return -1;
		if (last && is_file) {
			r = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (r >= 0)
				close(r);
		} else {
			r = mkdirat(parent, name, 0755);
		}
		close(parent);
		if (r < 0 && errno != EEXIST)
			return -1;
		if (!last)
			prefix[i] = '/';
	}
	return open_in_root(rootfd, path, O_PATH);
}

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

int mount_rootfs(const struct diyc_init *init, struct diyc_error *err)
{
	char path[PATH_BUF];

	if (init->scratch) {
		/* A tmpfs that exists only in the container's mount namespace: the
		 * mount points of idmapped layers (--userns), and with
		 * --rm-tmpfs-size the upper and work dirs of an ephemeral
		 * container, capped by the size= of scratch_options (a tmpfs
		 * without one could take half the host's RAM, charged to the
		 * container's memory cgroup).  Nothing to clean up on the host
		 * when the namespace dies. */
		/* No nodev/nosuid: the upper layer must behave like a disk-backed
		 * one; device access is the devices cgroup's business. */
		if (mount("tmpfs", init->scratch, "tmpfs", 0, init->scratch_options) < 0)
			return diyc_fail(err, "mount_scratch", errno, init->scratch);
		static const char *const dirs[] = { "upper", "work", "merged" };
		for (size_t i = 0; i < 3; i++) {
			if (diyc_path_join(path, sizeof(path), init->scratch, dirs[i]) < 0 ||
			    mkdir(path, 0755) < 0)
				return diyc_fail(err, "mount_scratch", errno, dirs[i]);
		}
	}
	if (attach_idmapped_layers(init, err) < 0)
		return -1;
	if (init->overlay_options) {
		if (mount("overlay", init->rootfs, "overlay", 0, init->overlay_options) < 0)
			return diyc_fail(err, "mount_overlay", errno, init->rootfs);
	} else {
		/* pivot_root needs a mount point: bind the plain directory to itself. */
		if (mount(init->rootfs, init->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			return diyc_fail(err, "bind_rootfs", errno, init->rootfs);
	}
	if ((init->rootfs_propagation & MS_SHARED) &&
	    mount(NULL, init->rootfs, NULL, MS_PRIVATE, NULL) < 0)
		return diyc_fail(err, "bind_rootfs", errno, init->rootfs);
	return 0;
}

static int mount_one(int rootfd, const struct diyc_mount *m, struct diyc_error *err)
{
	char target[64];
	int fd, r;

	fd = resolve_or_create(rootfd, m->target, m->is_file);
	if (fd < 0)
		return diyc_fail(err, "mount", errno, m->target);
	fd_path(target, sizeof(target), fd);
	r = mount(m->source, target, m->fstype, m->flags, m->data);
	close(fd);
	if (r < 0)
		return diyc_fail(err, "mount", errno, m->target);

	/* A bind mount ignores most flags on the first call: apply them with a
	 * remount of the new mount, found by resolving the path again. */
	if ((m->flags & MS_BIND) && (m->flags & ~(MS_BIND | MS_REC))) {
		fd = open_in_root(rootfd, m->target, O_PATH);
		if (fd < 0)
			return diyc_fail(err, "mount", errno, m->target);
		fd_path(target, sizeof(target), fd);
		r = mount(NULL, target, NULL, MS_REMOUNT | m->flags, NULL);
		close(fd);
		if (r < 0)
			return diyc_fail(err, "remount", errno, m->target);
	}
	if (m->propagation) {
		fd = open_in_root(rootfd, m->target, O_PATH);
		if (fd < 0)
			return diyc_fail(err, "mount", errno, m->target);
		fd_path(target, sizeof(target), fd);
		r = mount(NULL, target, NULL, m->propagation, NULL);
		close(fd);
		if (r < 0)
			return diyc_fail(err, "mount_propagation", errno, m->target);
	}
	return 0;
}

/*
 * User namespaces: the image's files belong to host uids, which mean
 * nothing in the container's namespace.  The parent hands us each layer as
 * an idmapped mount (host root shown as container root, and so on), with
 * ID_MAPS_DONE (enter_user_namespace); we attach them under the scratch
 * tmpfs, where the overlay options point.
 */
int attach_idmapped_layers(const struct diyc_init *init, struct diyc_error *err)
{
	const int *fds = init->layer_fds;
	char path[PATH_BUF], name[32];

	if (!init->n_layers)
		return 0;
	for (int i = 0; i < init->n_layers; i++) {
		snprintf(name, sizeof(name), "lower%d", i);
		if (diyc_path_join(path, sizeof(path), init->scratch, name) < 0 ||
		    (mkdir(path, 0755) < 0 && errno != EEXIST))
			return diyc_fail(err, "attach_layer", errno, name);
		if (syscall(SYS_move_mount, fds[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return diyc_fail(err, "attach_layer", errno, name);
		close(fds[i]);
	}
	return 0;
}

/* Parent side: a detached copy of `path` whose ids are seen through the
 * user namespace `userns_fd`. */
int diyc_idmapped_tree(const char *path, int userns_fd)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = userns_fd };
	int fd = syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		return -1;
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int mount_all(const struct diyc_init *init, struct diyc_error *err)
{
	int rootfd, r = 0;

	rootfd = open(init->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return diyc_fail(err, "mount", errno, init->rootfs);
	for (int i = 0; i < init->n_mounts && r == 0; i++)
		r = mount_one(rootfd, &init->mounts[i], err);
	close(rootfd);
	return r;
}

/* Open the parent directory of `path` inside the root (made if missing),
 * as a real directory fd: mknodat and symlinkat need one, not O_PATH; *name
 * gets the last component (a pointer into path). */
static int open_parent(int rootfd, const char *path, const char **name)
{
	char parent[PATH_BUF];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	if (len >= sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(parent, path, len);
	parent[len] = '\0';
	*name = slash ? slash + 1 : path;
	int dirfd = resolve_or_create(rootfd, parent, 0);
	if (dirfd < 0)
		return -1;
	int real = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int saved = errno;
	close(dirfd);
	errno = saved;
	return real;
}

static int bind_device(int dirfd, const char *name, const char *host_path, struct diyc_error *err)
{
	char target[64];
	int fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return diyc_fail(err, "bind_device", errno, host_path);
	close(fd);
	fd = openat(dirfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return diyc_fail(err, "bind_device", errno, host_path);
	fd_path(target, sizeof(target), fd);
	int r = mount(host_path, target, NULL, MS_BIND, NULL);
	close(fd);
	return r < 0 ? diyc_fail(err, "bind_device", errno, host_path) : 0;
}

int create_devices(const struct diyc_init *init, struct diyc_error *err)
{
	int rootfd, dirfd, r = 0;
	const char *name;

	rootfd = open(init->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return diyc_fail(err, "create_devices", errno, init->rootfs);

	for (int i = 0; i < init->n_devices && r == 0; i++) {
		const struct diyc_device *d = &init->devices[i];

		dirfd = open_parent(rootfd, d->path, &name);
		if (dirfd >= 0 && init->userns) {
			/* no mknod in a user namespace: bind the host's node */
			r = bind_device(dirfd, name, d->path, err);
		} else if (dirfd < 0 || (mknodat(dirfd, name, d->mode, d->rdev) < 0 && errno != EEXIST)) {
			r = diyc_fail(err, "mknod", errno, d->path);
		}
		if (dirfd >= 0)
			close(dirfd);
	}
	for (int i = 0; i < init->n_symlinks && r == 0; i++) {
		const struct diyc_symlink *s = &init->symlinks[i];

		dirfd = open_parent(rootfd, s->linkpath, &name);
		if (dirfd < 0 || (symlinkat(s->target, dirfd, name) < 0 && errno != EEXIST))
			r = diyc_fail(err, "symlink", errno, s->linkpath);
		if (dirfd >= 0)
			close(dirfd);
	}
	close(rootfd);
	return r;
}

int pivot_into_rootfs(const char *rootfs, struct diyc_error *err)
{
	/* pivot_root(".", ".") stacks the old root on top of the new one; the
	 * lazy unmount then drops it.  No put_old directory is needed in the
	 * image, so a read-only image works too.  The old root is reached
	 * through a descriptor opened before: "." names the new root's mount. */
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);

	if (oldroot < 0)
		return diyc_fail(err, "pivot_root", errno, "/");
	if (chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || fchdir(oldroot) < 0) {
		int saved = errno;

		close(oldroot);
		return diyc_fail(err, "pivot_root", saved, rootfs);
	}
	close(oldroot);
	/* the old root's mounts may be the host's peers (a shared
	 * rootfsPropagation): slaves first, so our unmount stays ours */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return diyc_fail(err, "umount_old_root", errno, NULL);
	if (umount2(".", MNT_DETACH) < 0)
		return diyc_fail(err, "umount_old_root", errno, NULL);
	if (chdir("/") < 0)
		return diyc_fail(err, "pivot_root", errno, "/");
	return 0;
}

/* Runs after pivot_root: paths are the container's own. */
int mask_paths(const struct diyc_init *init, struct diyc_error *err)
{
	struct stat st;

	for (int i = 0; i < init->n_masked; i++) {
		const char *p = init->masked_paths[i];
		int r;

		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return diyc_fail(err, "mask_path", errno, p);
		}
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0");
		else
			r = mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			return diyc_fail(err, "mask_path", errno, p);
	}
	for (int i = 0; i < init->n_readonly; i++) {
		const char *p = init->readonly_paths[i];

		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return diyc_fail(err, "readonly_path", errno, p);
		}
		if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return diyc_fail(err, "readonly_path", errno, p);
	}
	return 0;
}

int remount_root_readonly(const struct diyc_init *init, struct diyc_error *err)
{
	if (!init->readonly_root)
		return 0;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return diyc_fail(err, "readonly_root", errno, NULL);
	return 0;
}
