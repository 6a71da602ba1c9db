/* Syscall-to-alert latency probe: opens DIR/lat-<i> (files the script
 * created beforehand) N times, sleeping GAP_US between opens, and records
 * CLOCK_REALTIME just before each openat. Prints "<i> <ns>" lines at the end
 * (printing during the loop would add writes the agent sees).
 * usage: lat_loop N DIR GAP_US */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s N DIR GAP_US\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], "N");
    const char *dir = argv[2];
    long gap = parse_count(argv[3], "GAP_US");
    long long *t = calloc((size_t)n, sizeof *t);
    if (!t) {
        perror("calloc");
        return 1;
    }
    char path[4096];
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/lat-%ld", dir, i);
        t[i] = now_ns(CLOCK_REALTIME);
        int fd = openat(AT_FDCWD, path, O_RDONLY);
        if (fd >= 0)
            close(fd);
        usleep((useconds_t)gap);
    }
    for (long i = 0; i < n; i++)
        printf("%ld %lld\n", i, t[i]);
    free(t);
    return 0;
}
