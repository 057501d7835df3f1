/* The int8 arithmetic ceiling of one core, measured: independent AVX-512 VNNI vpdpbusd chains (64 u8 x s8
 * multiply-accumulates each) back to back, and a dependent scalar add chain (1 cycle per add) for the clock.
 * Built (gcc -O2 -mavx512f -mavx512vnni) and run by compare_routes.py; prints one JSON line. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double vnni_macs_per_s(long iters, __m512i *sink, int seed) {
    __m512i a = _mm512_set1_epi8((char)(3 + seed)), b = _mm512_set1_epi8(5);
    /* distinct starting values: identical accumulators would let the compiler compute one chain only */
    __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2),
            c3 = _mm512_set1_epi32(3), c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5),
            c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7), c8 = _mm512_set1_epi32(8),
            c9 = _mm512_set1_epi32(9), c10 = _mm512_set1_epi32(10), c11 = _mm512_set1_epi32(11);
    double t = now();
    for (long i = 0; i < iters; i++) {  /* 12 independent accumulators hide the instruction latency */
        c0 = _mm512_dpbusd_epi32(c0, a, b); c1 = _mm512_dpbusd_epi32(c1, a, b);
        c2 = _mm512_dpbusd_epi32(c2, a, b); c3 = _mm512_dpbusd_epi32(c3, a, b);
        c4 = _mm512_dpbusd_epi32(c4, a, b); c5 = _mm512_dpbusd_epi32(c5, a, b);
        c6 = _mm512_dpbusd_epi32(c6, a, b); c7 = _mm512_dpbusd_epi32(c7, a, b);
        c8 = _mm512_dpbusd_epi32(c8, a, b); c9 = _mm512_dpbusd_epi32(c9, a, b);
        c10 = _mm512_dpbusd_epi32(c10, a, b); c11 = _mm512_dpbusd_epi32(c11, a, b);
    }
    t = now() - t;
    *sink = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
            _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)),
            _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11))));
    return iters * 12.0 * 64.0 / t;
}

static double adds_per_s(long iters) {
    uint64_t x = 1, one = 1;
    double t = now();
    for (long i = 0; i < iters; i++) {
        /* 8 dependent register-register adds per iteration, one cycle each. Not `add $imm`: Golden Cove and later
           Intel cores fold immediate adds at rename, several per cycle (a Xeon here read as 20 GHz that way) */
        __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                         "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0" : "+r"(x) : "r"(one));
    }
    t = now() - t;
    return iters * 8.0 / t;
}

int main(void) {
    __m512i sink;
    double best_vnni = 0, best_clock = 0;
    for (int rep = 0; rep < 7; rep++) {  /* best of several: the machine may be shared */
        double v = vnni_macs_per_s(20000000L, &sink, rep), c = adds_per_s(100000000L);
        if (v > best_vnni) best_vnni = v;
        if (c > best_clock) best_clock = c;
    }
    int32_t lanes[16];
    _mm512_storeu_si512((void *)lanes, sink);
    printf("{\"vnni_int8_macs_per_s\": %.6g, \"clock_hz_estimate\": %.6g, \"macs_per_cycle\": %.4g, \"check\": %d}\n",
           best_vnni, best_clock, best_vnni / best_clock, lanes[0]);
    return 0;
}
