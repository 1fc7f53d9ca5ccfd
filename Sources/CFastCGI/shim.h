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
#endif
