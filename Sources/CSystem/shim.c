#define _GNU_SOURCE
#include "CSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* OpenSSL frees its global locks in an atexit handler (OPENSSL_cleanup). A thread that
   still hashes while the process exits (libpq's SCRAM exchange on a reconnect, a lease
   renewal, a request being drained) then takes a freed lock and crashes the exit: seen as
   signal 11 in pthread_rwlock_rdlock(NULL) from libcrypto, after every test had passed.
   Before main, so before anything else initialises libcrypto, it is told not to register
   that handler; the process's memory goes with it anyway. */
static int assetd_openssl_no_atexit_result = 0;
__attribute__((constructor)) static void assetd_openssl_no_atexit(void) {
    assetd_openssl_no_atexit_result = OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

int assetd_system_openssl_atexit_off(void) {
    return assetd_openssl_no_atexit_result;
}

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
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/resource.h>
#include <sys/socket.h>

int assetd_system_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
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

// The decoder child's confinement (assetd_system_confine) and its memfds.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>

// Landlock's constants past the ABI that Debian 12's headers know (kernel 6.1 = ABI 2).
#define ASSETD_LL_TRUNCATE (1ULL << 14)       /* ABI 3 */
#define ASSETD_LL_NET_BIND_TCP (1ULL << 0)     /* ABI 4 */
#define ASSETD_LL_NET_CONNECT_TCP (1ULL << 1)  /* ABI 4 */
#define ASSETD_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define ASSETD_LL_SCOPE_SIGNAL (1ULL << 1)    /* ABI 6 */

struct assetd_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

int assetd_system_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi >= 0) return (int)abi;
    // Only a kernel without Landlock (ENOSYS: not built in; EOPNOTSUPP: not enabled at
    // boot) is a graceful "none". Any other error (EPERM from a container's or systemd's
    // seccomp filter) is a refusal that confinement must not mistake for "no Landlock".
    int error = errno;
    return error == ENOSYS || error == EOPNOTSUPP ? 0 : -(error > 0 ? error : EINVAL);
}

int assetd_system_pidfd_send_signal(int pidfd, int signal, unsigned int flags) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, flags);
}

int assetd_system_refuse_landlock_for_tests(void) {
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_landlock_create_ruleset, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog filter = {.len = (unsigned short)(sizeof program / sizeof program[0]), .filter = program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter);
}

int assetd_system_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

/// The Landlock half: a domain of its own, in which no file may be written, made or
/// removed (but /dev/null written), and no signal sent, nor abstract socket reached,
/// outside it.
static int confine_landlock(int abi) {
    if (abi < 1) return 0;
    struct assetd_landlock_ruleset_attr attributes = {0};
    attributes.handled_access_fs = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR
        | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR
        | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO
        | LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2) attributes.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) attributes.handled_access_fs |= ASSETD_LL_TRUNCATE;
    size_t size = offsetof(struct assetd_landlock_ruleset_attr, handled_access_net);
    int result = ASSETD_CONFINED_FILES;
    if (abi >= 4) {
        // No TCP either: ffmpeg reads local files only (-protocol_whitelist file).
        attributes.handled_access_net = ASSETD_LL_NET_BIND_TCP | ASSETD_LL_NET_CONNECT_TCP;
        size = offsetof(struct assetd_landlock_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attributes.scoped = ASSETD_LL_SCOPE_SIGNAL | ASSETD_LL_SCOPE_ABSTRACT_UNIX;
        size = sizeof attributes;
        result |= ASSETD_CONFINED_SIGNALS;
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attributes, size, 0);
    if (ruleset < 0) return -1;
    // /dev/null stays writable: ffmpeg's standard error, and posix_spawn opens it.
    int null = open("/dev/null", O_PATH | O_CLOEXEC);
    struct landlock_path_beneath_attr devnull = {.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE, .parent_fd = null};
    if (null < 0 || syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &devnull, 0) != 0
        || syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
        if (null >= 0) close(null);
        close(ruleset);
        return -1;
    }
    close(null);
    close(ruleset);
    return result;
}

#if defined(__x86_64__)
#define ASSETD_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ASSETD_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/// The seccomp half: ptrace and reading or writing another process's memory are refused,
/// and so is every signal but to a thread of this very process (`self`, the child's pid
/// when it confines itself): kill, tkill, rt_sigqueueinfo, rt_tgsigqueueinfo and
/// pidfd_send_signal are refused whatever their target, tgkill is allowed only with
/// `self` as its thread group. Landlock keeps signals inside the child's domain only from
/// ABI 6 (Linux 6.12): below it, this is what keeps a child from signalling a sibling,
/// the zygote or assetd. glibc's raise, abort and pthread_kill use tgkill on their own
/// process; ffmpeg and ffprobe (another pid, under the same filter) may signal nothing,
/// so an abort of theirs ends in abort's fallback (a crash, still the end it wanted), and
/// the child does not kill them at their deadline itself (the zygote kills the child's
/// process group when the child ends; setsid and setpgid are refused, so that nothing
/// the child starts leaves that group).
/// Nor may it change another process's limits or scheduling: prlimit64,
/// sched_setaffinity, sched_setscheduler, sched_setparam and sched_setattr only on pid 0
/// or `self`, setpriority only PRIO_PROCESS of 0 or `self`, ioprio_set never.
static int confine_seccomp(pid_t self) {
#ifdef ASSETD_AUDIT_ARCH
#define REFUSE (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define NUMBER(n) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (n), 0, 1), BPF_STMT(BPF_RET | BPF_K, REFUSE)
// Call n only when its argument `arg` (a pid_t: the low 32 bits, the first word on a
// little-endian machine) is 0 or `self`; the number back in the accumulator after.
#define OWN(n, arg) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (n), 0, 5), \
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[arg])), \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0), \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 1, 0), \
        BPF_STMT(BPF_RET | BPF_K, REFUSE), \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), \
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ASSETD_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
        // x32 calls share the arch with their own numbers (bit 30): refused, not matched.
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
#endif
        NUMBER(__NR_ptrace),
        NUMBER(__NR_process_vm_readv),
        NUMBER(__NR_process_vm_writev),
        NUMBER(__NR_pidfd_getfd),
        NUMBER(__NR_kill),
        NUMBER(__NR_tkill),
        NUMBER(__NR_rt_sigqueueinfo),
        NUMBER(__NR_rt_tgsigqueueinfo),
        NUMBER(__NR_pidfd_send_signal),
        // The process group the child made before it confined itself is where it and
        // whatever it runs stay: the zygote kills that group when the child ends.
        NUMBER(__NR_setsid),
        NUMBER(__NR_setpgid),
        // No socket at all: so that a parser's exploit cannot send out what it reads, not
        // over the network (Landlock refuses TCP only from ABI 4, Linux 6.7; Debian 12 has
        // 6.1) nor through a local daemon that would (a resolver's or nscd's unix socket:
        // a DNS query carries data out). The child talks to the zygote on a socket it
        // inherits; nothing it runs (libvips, poppler, libheif, ffmpeg and ffprobe with
        // -protocol_whitelist file) opens one: the decoder tests run every loader under
        // this filter. glibc's lookups (nscd, systemd-userdb) fail over to files.
        // io_uring could make a socket (IORING_OP_SOCKET) without this call: refused too.
        NUMBER(__NR_socket),
        NUMBER(__NR_io_uring_setup),
        // A socketpair only of connected types, SOCK_STREAM or SOCK_SEQPACKET (the type's
        // low 4 bits; SOCK_NONBLOCK and SOCK_CLOEXEC are flags above them): an end of a
        // SOCK_DGRAM pair sends to any path-named or abstract datagram socket its sendto or
        // connect names (journald's /run/systemd/journal/socket, /dev/log: forged log lines,
        // syslog forwarding off the host). connect is refused outright (an end of a pair is
        // connected already), and sendto with an address (its fifth argument, both words);
        // send and sendto without one stay. sendmsg's msg_name is in memory a filter cannot
        // read, but a connected stream or seqpacket end ignores or refuses it.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_SEQPACKET, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        NUMBER(__NR_connect),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendto, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4]) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        // fcntl F_SETOWN / F_SETOWN_EX and ioctl FIOSETOWN / SIOCSPGRP: the kernel would send
        // a descriptor's SIGIO (or the signal F_SETSIG chose) to the owner they name, with
        // only the uid checked. The command is the low 32 bits of the second argument.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fcntl, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETOWN, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETOWN_EX, 0, 6),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FIOSETOWN, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIOCSPGRP, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        // The accumulator holds an argument now: the number again for what follows.
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        // Limits and scheduling of a process it names: only of itself (0 or its own pid).
        // prlimit64(pid, ...) checks only that the uid matches, so RLIMIT_CPU 0 on the zygote
        // (or assetd, when the zygote is its child) would have the kernel kill it, and
        // RLIMIT_NOFILE or RLIMIT_NPROC 0 stop its accept and fork; the child's own limits
        // (set after it confined itself) and glibc's getrlimit and setrlimit use pid 0.
        OWN(__NR_prlimit64, 0),
        OWN(__NR_sched_setaffinity, 0),
        OWN(__NR_sched_setscheduler, 0),
        OWN(__NR_sched_setparam, 0),
        OWN(__NR_sched_setattr, 0),
        // setpriority(which, who, nice): PRIO_PROCESS of itself only (PRIO_PGRP and
        // PRIO_USER reach further: PRIO_USER with 0 is every process of its uid).
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setpriority, 0, 8),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PRIO_PROCESS, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        // ioprio_set: nothing the child runs (libvips, ffmpeg, glibc) calls it.
        NUMBER(__NR_ioprio_set),
        // tgkill(tgid, tid, signal): only its own thread group. The kernel reads tgid as
        // a pid_t, the low 32 bits of the first argument (little-endian: its first word).
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, REFUSE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
#undef OWN
#undef NUMBER
#undef REFUSE
    struct sock_fprog filter = {.len = (unsigned short)(sizeof program / sizeof program[0]), .filter = program};
    if (self <= 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) == 0 ? ASSETD_CONFINED_SYSCALLS : -1;
#else
    return 0;
#endif
}

static int confine(int highest_abi) {
    int abi = assetd_system_landlock_abi();
    if (abi < 0) return -1; // Landlock refused, not absent: fail closed
    if (abi > highest_abi) abi = highest_abi;
    if (abi >= 1 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    int files = confine_landlock(abi);
    if (files < 0) return -1;
    // The pid as the kernel has it (getpid may be a cached value in some libcs).
    int calls = confine_seccomp((pid_t)syscall(SYS_getpid));
    if (calls < 0) return -1;
    return files | calls;
}

#include <stdatomic.h>

static atomic_int next_thread_slot;
static __thread int thread_slot = -1;

int assetd_system_thread_slot(void) {
    if (thread_slot < 0) thread_slot = atomic_fetch_add_explicit(&next_thread_slot, 1, memory_order_relaxed);
    return thread_slot;
}

int assetd_system_confine(void) {
    return confine(INT32_MAX);
}

int assetd_system_confine_below_landlock_abi_for_tests(int highest_abi) {
    return confine(highest_abi);
}

#include <sched.h>

int assetd_system_touch_process_for_tests(int call, int pid) {
    switch (call) {
    case 0: {
        struct rlimit limit;
        if (syscall(SYS_prlimit64, pid, RLIMIT_CORE, NULL, &limit) != 0) return -1;
        return (int)syscall(SYS_prlimit64, pid, RLIMIT_CORE, &limit, NULL);
    }
    case 1: {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, (id_t)pid);
        if (nice == -1 && errno != 0) return -1;
        return setpriority(PRIO_PROCESS, (id_t)pid, nice);
    }
    case 2: {
        cpu_set_t set;
        if (sched_getaffinity(pid, sizeof set, &set) != 0) return -1;
        return sched_setaffinity(pid, sizeof set, &set);
    }
    case 3: {
        struct sched_param parameter;
        int policy = sched_getscheduler(pid);
        if (policy < 0 || sched_getparam(pid, &parameter) != 0) return -1;
        return sched_setscheduler(pid, policy, &parameter);
    }
    case 4: {
        uint32_t attributes[14] = {0}; // struct sched_attr as of Linux 5.3: 56 bytes
        if (syscall(SYS_sched_getattr, pid, attributes, sizeof attributes, 0) != 0) return -1;
        return (int)syscall(SYS_sched_setattr, pid, attributes, 0);
    }
    case 5: {
        long priority = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, pid);
        if (priority < 0) return -1;
        return (int)syscall(SYS_ioprio_set, 1, pid, priority);
    }
    default: errno = EINVAL; return -1;
    }
}

int assetd_system_io_uring_setup_for_tests(void) {
    // io_uring_setup(1, NULL): EFAULT if it may run at all; EPERM when refused.
    return (int)syscall(SYS_io_uring_setup, 1, NULL);
}
