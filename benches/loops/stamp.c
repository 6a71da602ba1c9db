/* Prefix every line read from stdin with its CLOCK_REALTIME arrival time in
 * ns ("<ns> <line>"), so the script can tell when an alert reached a reader.
 * usage: agent | stamp > file */
#include "common.h"
#include <string.h>

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        long long t = now_ns(CLOCK_REALTIME);
        printf("%lld %s", t, line);
        if (len == 0 || line[len - 1] != '\n')
            putchar('\n');
        fflush(stdout);
    }
    free(line);
    return 0;
}
