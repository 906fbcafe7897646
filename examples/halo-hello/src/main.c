#include <stdio.h>
#include <stdlib.h>
#include "greet.h"

int main(int argc, char **argv)
{
    char line[256];
    int n = greet(line, sizeof line, argc > 1 ? argv[1] : NULL);
    if (n < 0 || (size_t)n >= sizeof line) {
        fputs("halo-hello: name too long\n", stderr);
        return EXIT_FAILURE;
    }
    puts(line);
    return EXIT_SUCCESS;
}
