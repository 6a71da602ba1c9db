/* TCP connect to a loopback listener + close, N times. The listener is a
 * forked child on 127.0.0.1:<ephemeral> that accepts and closes. The client
 * closes with SO_LINGER 0 (RST) so N connects leave no TIME_WAIT behind and
 * rounds never run out of ephemeral ports.
 * usage: connect_loop N   -> prints ns per socket+connect+close on stdout. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], "N");
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
        perror("listen");
        return 1;
    }
    pid_t srv = fork();
    if (srv < 0) {
        perror("fork");
        return 1;
    }
    if (srv == 0) {
        for (;;) {
            int c = accept(ls, NULL, NULL);
            if (c >= 0)
                close(c);
        }
    }
    close(ls);
    struct linger lg = {1, 0};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            perror("socket");
            break;
        }
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
            perror("connect");
            close(s);
            kill(srv, SIGKILL);
            waitpid(srv, NULL, 0);
            return 1;
        }
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(s);
    }
    long long t1 = now_ns(CLOCK_MONOTONIC);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}
