/*
** hash.c -- the 64-bit content hash stored in the index.
**
** Detects changed files and documents on re-index; not a security
** boundary. Processes 8 bytes per step (a multiply-xorshift mix in the
** style of wyhash/murmur finalizers) so hashing a large corpus costs far
** less than tokenizing it. The definition is frozen: changing it would
** make every stored hash look changed.
*/
#include "plumb_impl.h"

#include <assert.h>
#include <string.h>

#define M1 0x9E3779B97F4A7C15ULL
#define M2 0xBF58476D1CE4E5B9ULL
#define M3 0x94D049BB133111EBULL

static uint64_t mix(uint64_t x) {
    x ^= x >> 30; x *= M2;
    x ^= x >> 27; x *= M3;
    x ^= x >> 31;
    return x;
}

static uint64_t load64(const unsigned char *p) {
    /* little-endian by definition, whatever the host */
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

uint64_t hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * M1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) h = mix(h ^ load64(p + i)) + M1;
    uint64_t tail = 0;
    for (size_t j = 0; i + j < n; j++) tail |= (uint64_t)p[i + j] << (8 * j);
    return mix(h ^ tail ^ (uint64_t)(n - i) << 59);
}

/* The same function fed in pieces. hash64() mixes the total length in
** first, so the length is declared up front; the state then consumes
** whole 8-byte words as they complete and keeps at most 7 bytes back
** for the tail, exactly the words and tail hash64() sees. */
void hash64_begin(hash64_state *s, uint64_t n, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->h = seed ^ (n * M1);
    s->n = n;
}

void hash64_update(hash64_state *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->fed += n;
    if (s->npart) {
        while (n && s->npart < 8) { s->part[s->npart++] = *p++; n--; }
        if (s->npart < 8) return;
        s->h = mix(s->h ^ load64(s->part)) + M1;
        s->npart = 0;
    }
    for (; n >= 8; p += 8, n -= 8) s->h = mix(s->h ^ load64(p)) + M1;
    memcpy(s->part, p, n);
    s->npart = (unsigned)n;
}

uint64_t hash64_end(const hash64_state *s) {
    assert(s->fed == s->n); /* the declared length was fed, no more, no less */
    uint64_t tail = 0;
    for (unsigned j = 0; j < s->npart; j++) tail |= (uint64_t)s->part[j] << (8 * j);
    return mix(s->h ^ tail ^ (uint64_t)s->npart << 59);
}

void hash64_hex(uint64_t h, char out[17]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) { out[i] = hx[h & 15]; h >>= 4; }
    out[16] = 0;
}
