/* getppid(2) via syscall(), N times: a syscall no agent here cares about, so
 * the time added is the per-syscall tax of hooks on every syscall
 * (raw sys_enter/sys_exit) that the rest of the system pays.
 * usage: null_loop N   -> prints ns per syscall on stdout. */
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], "N");
    long sink = 0;
    long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        sink += syscall(SYS_getppid);
    long long t1 = now_ns(CLOCK_MONOTONIC);
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return sink == 0 ? 1 : 0;
}
