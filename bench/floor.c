/*
 * The transport floor for bench/presign.sh and bench/direct.sh: a bare libfcgi responder
 * that reads the request body and answers with a presign-sized JSON body, on the same
 * number of threads as assetd.
 * Whatever assetd adds on top (JWT, database, SigV4, routing) is the gap to this.
 *
 *   cc -O2 -o floor bench/floor.c -lfcgi -lpthread
 *   ./floor SOCKET_PATH THREADS
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int listen_fd;
static char response[2048];
static int response_len;

static void *worker(void *arg) {
    (void)arg;
    FCGX_Request request;
    FCGX_InitRequest(&request, listen_fd, 0);
    static __thread char sink[65536];
    while (FCGX_Accept_r(&request) >= 0) {
        /* Read the whole body, as assetd does, so that an upload's floor includes its
           transfer over FastCGI. */
        while (FCGX_GetStr(sink, sizeof sink, request.in) > 0) {
        }
        FCGX_PutStr(response, response_len, request.out);
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET_PATH THREADS\n", argv[0]);
        return 2;
    }
    const char *body =
        "{\"url\":\"http://127.0.0.1:9000/assetd-dev/1/digital_assets/1.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=assetd-dev%2F20261128%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261128T153541Z"
        "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&partNumber=1&uploadId=uqtHU4M7kDVig7hVD8w29PpT6XO7rF8XVPk6vXi6szLMI9GOgGYbmRg"
        "&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"expiresIn\":3600}";
    response_len = snprintf(response, sizeof response,
                            "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                            strlen(body), body);
    int threads = atoi(argv[2]);
    if (threads < 1) threads = 1;
    FCGX_Init();
    unlink(argv[1]);
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) {
        perror("FCGX_OpenSocket");
        return 1;
    }
    chmod(argv[1], 0666);
    pthread_t ids[512];
    if (threads > 512) threads = 512;
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    return 0;
}
