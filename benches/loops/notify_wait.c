/* A minimal sd_notify receiver: binds a unix datagram socket at PATH and
 * exits 0 as soon as a message containing READY=1 arrives, 1 on timeout.
 * usage: notify_wait PATH TIMEOUT_S */
#include "common.h"
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH TIMEOUT_S\n", argv[0]);
        return 2;
    }
    long timeout = parse_count(argv[2], "TIMEOUT_S");
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof a.sun_path) {
        fprintf(stderr, "path too long\n");
        return 2;
    }
    strcpy(a.sun_path, argv[1]);
    unlink(argv[1]);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bind");
        return 2;
    }
    long long deadline = now_ns(CLOCK_MONOTONIC) + timeout * 1000000000LL;
    char buf[4096];
    for (;;) {
        long long left = (deadline - now_ns(CLOCK_MONOTONIC)) / 1000000;
        if (left <= 0)
            return 1;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = 0;
        if (strstr(buf, "READY=1")) {
            unlink(argv[1]);
            return 0;
        }
    }
}
