/* rng.h - a seeded xorshift64* generator, so property tests are reproducible from their seed. */
#ifndef VR_TEST_RNG_H
#define VR_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state = 1;

static inline uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

#endif
