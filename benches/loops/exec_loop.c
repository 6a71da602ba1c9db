/* fork + execve(/bin/true) + waitpid, N times.
 * usage: exec_loop N   -> prints ns per fork+exec+wait on stdout. */
#include "common.h"
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], "N");
    char *const child_argv[] = {"/bin/true", NULL};
    long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            execve("/bin/true", child_argv, environ);
            _exit(127);
        }
        int st = 0;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child failed\n");
            return 1;
        }
    }
    long long t1 = now_ns(CLOCK_MONOTONIC);
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}
