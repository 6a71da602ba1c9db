/* openat(O_RDONLY)+close of one existing file, N times.
 * usage: open_loop N PATH   -> prints ns per open+close on stdout. */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N PATH\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], "N");
    const char *path = argv[2];
    long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        int fd = openat(AT_FDCWD, path, O_RDONLY);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        close(fd);
    }
    long long t1 = now_ns(CLOCK_MONOTONIC);
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}
