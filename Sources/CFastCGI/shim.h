#ifndef ASSETD_CFASTCGI_SHIM_H
#define ASSETD_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#include <sys/socket.h>

/* 1 when fd is a listening socket (spawn-fcgi, systemd socket activation). */
static inline int assetd_fcgi_is_listening_socket(int fd) {
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return 0;
    return listening != 0;
}

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A listening unix socket at `path`, with `mode` and, when group >= 0, that group, both
 * set before listen(), so nothing can connect before they are right. libfcgi's
 * FCGX_OpenSocket would exit(errno) on a failed bind (status 13 for EACCES); this returns
 * -1 with errno set instead, and *step names the call that failed. */
static inline int assetd_fcgi_listen_unix(const char *path, int backlog, unsigned mode, long long group,
                                          const char **step) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(address.sun_path)) { *step = "path length"; errno = ENAMETOOLONG; return -1; }
    strcpy(address.sun_path, path);
    *step = "socket";
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int saved;
    *step = "bind";
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) goto fail;
    *step = "chown";
    if (group >= 0 && chown(path, (uid_t)-1, (gid_t)group) != 0) goto unlink_fail;
    *step = "chmod";
    if (chmod(path, (mode_t)mode) != 0) goto unlink_fail;
    *step = "listen";
    if (listen(fd, backlog) != 0) goto unlink_fail;
    return fd;
unlink_fail:
    saved = errno;
    unlink(path);
    errno = saved;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* A listening TCP socket on "host:port" (or ":port", every address), as libfcgi accepts,
 * without libfcgi's exit() on failure: -1 with errno set (EINVAL for a bad address). */
static inline int assetd_fcgi_listen_tcp(const char *host, const char *port, int backlog, const char **step) {
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    *step = "getaddrinfo";
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &found) != 0 || !found) { errno = EINVAL; return -1; }
    *step = "socket";
    int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
    if (fd < 0) { freeaddrinfo(found); return -1; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    *step = "bind";
    int ok = bind(fd, found->ai_addr, found->ai_addrlen) == 0;
    if (ok) { *step = "listen"; ok = listen(fd, backlog) == 0; }
    int saved = errno;
    freeaddrinfo(found);
    if (!ok) { close(fd); errno = saved; return -1; }
    return fd;
}

#include <malloc.h>

/* glibc raises its mmap threshold after large frees, so freed upload buffers stayed
 * resident (RSS grew 7 MB a 25 MB upload with 16 threads). A fixed 128 KiB threshold (large
 * blocks are mapped and unmapped, and the threshold no longer moves) and a 1 MiB trim
 * threshold keep RSS flat. `arenas` bounds glibc's arenas: one per worker thread, capped (the
 * caller passes FastCGIServer.arenas), since fewer arenas than threads made every request's
 * larger blocks (libfcgi's stream buffers, Swift buffers over tcache's 1 KiB) queue on the
 * arena locks: 0.37 futex calls a request with 2 arenas and 16 workers (perf), the futex
 * waits being ~85% of them malloc's. The floor of bench/presign.sh has glibc's default. */
static inline void assetd_fcgi_bound_malloc(int arenas) {
    mallopt(M_ARENA_MAX, arenas < 2 ? 2 : arenas);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}
#endif
