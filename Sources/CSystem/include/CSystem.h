// glibc extras that Swift's Glibc module does not declare: they sit behind _GNU_SOURCE
// (which that module does not set), or are macros. Each is defined in shim.c, which
// sets _GNU_SOURCE, so callers need nothing but this header.
#ifndef ASSETD_CSYSTEM_H
#define ASSETD_CSYSTEM_H

#include <spawn.h>
#include <sys/types.h>

/// open(directory, O_TMPFILE | flags, mode): a file with no name in `directory`.
/// -1 with errno set, EOPNOTSUPP where the build has no O_TMPFILE.
int assetd_system_open_tmpfile(const char *directory, int flags, mode_t mode);

/// gettid(2): the calling thread's kernel id (glibc 2.30+).
pid_t assetd_system_gettid(void);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): the child closes every
/// descriptor from `from` on.
int assetd_system_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
