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

#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

int assetd_system_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

int assetd_system_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

int assetd_system_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL);
}

int assetd_system_limit(int resource, unsigned long long value) {
    int which;
    switch (resource) {
    case ASSETD_LIMIT_ADDRESS_SPACE: which = RLIMIT_AS; break;
    case ASSETD_LIMIT_CPU_SECONDS: which = RLIMIT_CPU; break;
    case ASSETD_LIMIT_CORE_BYTES: which = RLIMIT_CORE; break;
    case ASSETD_LIMIT_FILE_BYTES: which = RLIMIT_FSIZE; break;
    case ASSETD_LIMIT_OPEN_FILES: which = RLIMIT_NOFILE; break;
    default: errno = EINVAL; return -1;
    }
    struct rlimit current;
    if (getrlimit(which, &current) != 0) return -1;
    rlim_t wanted = (rlim_t)value;
    if (current.rlim_max != RLIM_INFINITY && wanted > current.rlim_max) wanted = current.rlim_max;
    struct rlimit limit = { wanted, wanted };
    return setrlimit(which, &limit);
}

long assetd_system_send_with_descriptor(int socket, const void *bytes, unsigned long length, int descriptor) {
    struct iovec vector = { (void *)bytes, length };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { 0 };
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof control.space;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return (long)sent;
}

long assetd_system_receive_with_descriptor(int socket, void *bytes, unsigned long capacity, int *descriptor) {
    *descriptor = -1;
    struct iovec vector = { bytes, capacity };
    union { struct cmsghdr header; char space[CMSG_SPACE(4 * sizeof(int))]; } control;
    struct msghdr message = { 0 };
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof control.space;
    ssize_t received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (*descriptor < 0) *descriptor = fd; else close(fd);
        }
    }
    return (long)received;
}

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>

pid_t assetd_system_fork(void) {
    return fork();
}

int assetd_system_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int assetd_system_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

void assetd_system_close_from(int from) {
    closefrom(from);
}

int assetd_system_thread_count(void) {
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(tasks);
    return count;
}
