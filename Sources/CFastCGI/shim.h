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

#include <malloc.h>

/* glibc gives each worker thread its own arena and raises its mmap threshold after large
 * frees, so freed upload buffers stayed resident (RSS grew 7 MB a 25 MB upload with 16
 * threads). Two arenas and a fixed 128 KiB threshold (large blocks are mapped and
 * unmapped, and the threshold no longer moves) keep RSS flat. */
static inline void assetd_fcgi_bound_malloc(void) {
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}
#endif
