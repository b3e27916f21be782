import { ApplicationError, Command } from '@diocp/core';

export interface SumRequest {
  numbers: number[];
}

/** 0x02 (JSON): `{"numbers":[1,2,3]}` → `{"sum":6}`. */
@Command(0x02, { codec: 'json' })
export class Sum {
  handle(req: SumRequest): { sum: number } {
    if (!req || !Array.isArray(req.numbers) || !req.numbers.every((n) => typeof n === 'number')) {
      // An application error: the client gets status 100 with this message.
      throw new ApplicationError(100, 'expected {"numbers": [number, ...]}');
    }
    return { sum: req.numbers.reduce((a, b) => a + b, 0) };
  }
}
