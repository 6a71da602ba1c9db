/* Shared helpers for the overhead loops: a monotonic clock in ns and a
 * strict integer parser. Each loop prints one number: ns per operation. */
#ifndef VIGIL_BENCH_COMMON_H
#define VIGIL_BENCH_COMMON_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long long now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long parse_count(const char *s, const char *what) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v <= 0) {
        fprintf(stderr, "bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}
#endif
