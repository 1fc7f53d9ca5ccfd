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

/// 1 when this process's constructor told libcrypto, before main, to register no atexit
/// cleanup (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT)): exit() then frees nothing that
/// threads still hashing use. 0 if that call failed or did not run.
int assetd_system_openssl_atexit_off(void);

/// prctl(PR_SET_DUMPABLE, dumpable): 0 makes /proc/PID/{environ,mem,fd} root's and keeps
/// every process of the same user from ptrace-attaching. 0 or -1 with errno.
int assetd_system_set_dumpable(int dumpable);

/// prctl(PR_SET_NO_NEW_PRIVS, 1): execve can never grant privileges again (set-uid,
/// file capabilities), for this process and every child.
int assetd_system_set_no_new_privs(void);

/// setrlimit(resource, {soft, hard}), with `resource` one of the ASSETD_LIMIT_* below.
/// A limit above the current hard one is lowered to it (a process cannot raise it).
#define ASSETD_LIMIT_ADDRESS_SPACE 1
#define ASSETD_LIMIT_CPU_SECONDS 2
#define ASSETD_LIMIT_CORE_BYTES 3
#define ASSETD_LIMIT_FILE_BYTES 4
#define ASSETD_LIMIT_OPEN_FILES 5
int assetd_system_limit(int resource, unsigned long long value);

/// sendmsg of `length` bytes with one descriptor attached (SCM_RIGHTS); -1 with errno.
long assetd_system_send_with_descriptor(int socket, const void *bytes, unsigned long length, int descriptor);

/// recvmsg of up to `capacity` bytes; a descriptor that came along is stored in
/// `*descriptor` (close-on-exec), else -1. Any extra descriptors are closed.
long assetd_system_receive_with_descriptor(int socket, void *bytes, unsigned long capacity, int *descriptor);

/// fork(2), which Swift does not offer: for the decoder zygote only, which calls it while
/// it has a single thread (see DecoderZygote).
pid_t assetd_system_fork(void);

/// pidfd_open(2): a descriptor that polls readable once the child `pid` has ended.
int assetd_system_pidfd_open(pid_t pid);

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` when the parent (the thread
/// that forked this process) ends.
int assetd_system_set_parent_death_signal(int signal);

/// closefrom(3) (glibc 2.34+): closes every descriptor from `from` on.
void assetd_system_close_from(int from);

/// The number of threads of this process (the entries of /proc/self/task); -1 when
/// /proc cannot be read.
int assetd_system_thread_count(void);

/// memfd_create(name, MFD_CLOEXEC): a file with no name in any directory, only reachable
/// through its descriptor (a video's frame, ffprobe's answer). -1 with errno.
int assetd_system_memfd(const char *name);

/// The Landlock ABI the kernel offers (landlock_create_ruleset's version), 0 without it
/// (ENOSYS, EOPNOTSUPP), or -errno when the call is refused (EPERM: a seccomp filter of a
/// container or of systemd): then `assetd_system_confine` fails, rather than decode unconfined.
int assetd_system_landlock_abi(void);

/// pidfd_send_signal(2) with no siginfo: 0, or -1 with errno.
int assetd_system_pidfd_send_signal(int pidfd, int signal, unsigned int flags);

/// For tests, in a forked child: a seccomp filter that refuses landlock_create_ruleset with
/// EPERM, as a container's may. 0, or -1 with errno.
int assetd_system_refuse_landlock_for_tests(void);

/// What `assetd_system_confine` set up, as bits.
#define ASSETD_CONFINED_FILES 1     /* Landlock: no file written, made or removed but /dev/null */
#define ASSETD_CONFINED_SIGNALS 2   /* Landlock ABI 6: no signal or abstract socket outside its domain */
#define ASSETD_CONFINED_SYSCALLS 4  /* seccomp: no ptrace, no other process's memory, limits or scheduling, no signal but to itself, no socket */

/// A decoder child's confinement, for itself and every program it runs (inherited by
/// fork and execve, never lifted): a Landlock domain of its own where no file may be
/// written, made or removed but /dev/null, no TCP connect or bind (ABI 4), and (ABI 6,
/// Linux 6.12) no signal may be sent to, nor abstract socket reached in, a process
/// outside it (so neither its siblings, in domains of their own, nor the zygote or
/// assetd); Landlock also keeps ptrace, /proc/PID/mem and /proc/PID/fd of processes
/// outside it closed. Then a seccomp filter refusing ptrace, process_vm_readv/writev,
/// pidfd_getfd, every x32 call, and every signal but to its own threads: kill, tkill,
/// rt_sigqueueinfo, rt_tgsigqueueinfo and pidfd_send_signal always, tgkill but to its
/// own pid (the caller's at this call: programs it runs, another pid, may signal
/// nothing), so that no signal leaves the child below Landlock ABI 6 either; setsid and
/// setpgid (what it runs stays in the process group the zygote kills); no socket() of any
/// family, AF_UNIX too, and no io_uring (no network whatever the Landlock ABI, nor a local
/// resolver); socketpair only SOCK_STREAM or SOCK_SEQPACKET, no connect, no sendto with an
/// address (no datagram to journald or /dev/log); and no limit or
/// scheduling of another process: prlimit64, sched_setaffinity, sched_setscheduler,
/// sched_setparam and sched_setattr only on pid 0 or its own, setpriority only
/// PRIO_PROCESS of 0 or its own pid, ioprio_set never (prlimit64 on another process of
/// the same uid would let it set the zygote's RLIMIT_CPU to 0). Sets
/// no_new_privs. The bits of what was set (a kernel without Landlock gives only
/// ASSETD_CONFINED_SYSCALLS), or -1 with errno when a step the kernel offers failed.
/// Raw system calls only: safe after fork.
int assetd_system_confine(void);

/// A small number of the calling thread's own, 0 for the first thread that asks, 1 for the
/// next, and so on (a thread-local, set at the first call): which buffer of the access
/// log a worker thread writes into, without a lock to find it.
int assetd_system_thread_slot(void);

/// For tests, in a forked child: `assetd_system_confine` as on a kernel whose Landlock
/// ABI is at most `highest_abi` (0: as without Landlock).
int assetd_system_confine_below_landlock_abi_for_tests(int highest_abi);

/// For tests: io_uring_setup(1, NULL), -1 with errno (EPERM when a filter refuses it).
int assetd_system_io_uring_setup_for_tests(void);

/// For tests: sets a limit or the scheduling of process `pid` (0: the caller) to what it
/// reads it is, changing nothing: `call` 0 prlimit64 (RLIMIT_CORE), 1 setpriority
/// (PRIO_PROCESS), 2 sched_setaffinity, 3 sched_setscheduler, 4 sched_setattr, 5 ioprio_set.
/// 0, or -1 with errno (of the read or of the write).
int assetd_system_touch_process_for_tests(int call, int pid);

#endif
