/* check.h -- the tiny assertion kit every plumb test executable uses. */
#ifndef PLUMB_CHECK_H
#define PLUMB_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plumb.h"

static int check_failures = 0;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    check_failures++; } } while (0)
#define CHECK_OK(expr) do { plumb_status rc_ = (expr); if (rc_ != PLUMB_OK) { \
    fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, \
            plumb_status_str(rc_), plumb_errmsg()); check_failures++; } } while (0)
#define CHECK_RC(expr, want) do { plumb_status rc_ = (expr); if (rc_ != (want)) { \
    fprintf(stderr, "%s:%d: %s -> %s (want %s): %s\n", __FILE__, __LINE__, #expr, \
            plumb_status_str(rc_), plumb_status_str(want), plumb_errmsg()); check_failures++; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) { \
    fprintf(stderr, "%s:%d: CHECK_STR %s == %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
            #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); check_failures++; } } while (0)
#define CHECK_NEAR(a, b, eps) do { double a_ = (a), b_ = (b); \
    if (!(a_ - b_ <= (eps) && b_ - a_ <= (eps))) { \
    fprintf(stderr, "%s:%d: CHECK_NEAR %s ~ %s: %.9g vs %.9g\n", __FILE__, __LINE__, \
            #a, #b, a_, b_); check_failures++; } } while (0)

/* Return from main with this. */
#define CHECK_DONE() (check_failures ? (fprintf(stderr, "%d check(s) failed\n", \
    check_failures), 1) : 0)
#endif
