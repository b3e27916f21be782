import { Command } from '@diocp/core';

/** 0x01: returns its raw payload unchanged. Benchmarks and outside checks rely on this. */
@Command(0x01)
export class Echo {
  handle(payload: Buffer): Buffer {
    return payload;
  }
}
