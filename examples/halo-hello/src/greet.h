#ifndef HALO_HELLO_GREET_H
#define HALO_HELLO_GREET_H
#include <stddef.h>

/* Writes "Hello, NAME!" (NAME defaults to "world") into buf; returns the
 * length it needed, like snprintf, so callers can detect truncation. */
int greet(char *buf, size_t size, const char *name);

#endif
