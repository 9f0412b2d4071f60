/* statx_compat: lets GNU coreutils' `ls` and `stat` work under gVisor's runsc 0.0~20221219.
 *
 * That runsc answers statx(2) with EINVAL whenever AT_NO_AUTOMOUNT is set, and coreutils 9.1
 * always sets it. gVisor has no automount points, so the flag changes nothing there: on exactly
 * that failure the call is repeated without it. Under runc the first call succeeds and this is
 * never reached. Preloaded through /etc/ld.so.preload on a read-only root, so a tool can neither
 * remove it nor put anything in its place; it adds no privilege and calls nothing but statx.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    long rc = syscall(SYS_statx, dirfd, path, flags, mask, buf);
    if (rc == -1 && errno == EINVAL && (flags & AT_NO_AUTOMOUNT)) {
        rc = syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
    }
    return (int)rc;
}
