#define _GNU_SOURCE
#include "CSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int assetd_system_open_tmpfile(const char *directory, int flags, mode_t mode) {
#ifdef O_TMPFILE
    return open(directory, O_TMPFILE | flags, mode);
#else
    (void)directory; (void)flags; (void)mode;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

pid_t assetd_system_gettid(void) {
    return gettid();
}

int assetd_system_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
