// The only source of randomness: a seeded xoroshiro128+ (pure-rand). Same
// seed, same numbers, on every machine.

import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import type { JumpableRandomGenerator } from "pure-rand/types/JumpableRandomGenerator";

export class Rng {
  private readonly g: JumpableRandomGenerator;

  constructor(readonly seed: number) {
    this.g = xoroshiro128plus(seed | 0);
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return uniformInt(this.g, lo, hi);
  }
}
