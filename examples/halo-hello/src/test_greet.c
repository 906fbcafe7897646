/* Unit tests for greet(): run by `make check`, and so by dh_auto_test
 * during the package build (unless DEB_BUILD_OPTIONS=nocheck). */
#include <stdio.h>
#include <string.h>
#include "greet.h"

static int failures;

static void expect(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "FAIL: got \"%s\", want \"%s\"\n", got, want);
        failures++;
    }
}

int main(void)
{
    char buf[64];
    greet(buf, sizeof buf, "halo");
    expect(buf, "Hello, halo!");
    greet(buf, sizeof buf, NULL);
    expect(buf, "Hello, world!");
    greet(buf, sizeof buf, "");
    expect(buf, "Hello, world!");
    /* Truncation is reported through the return value. */
    if (greet(buf, 4, "halo") != 12) {
        fputs("FAIL: truncated length\n", stderr);
        failures++;
    }
    printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
