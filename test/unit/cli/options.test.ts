import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { integer, json, list, prefetchCount, seconds } from '../../../src/cli/options.js';

describe('CLI option parsers', () => {
  it('reads a bare number as seconds, as Celery’s CLI does, and a unit as written', () => {
    expect(seconds('10')).toBe(10_000);
    expect(seconds('1.5')).toBe(1500);
    expect(seconds('250ms')).toBe(250);
    expect(seconds('5m')).toBe(300_000);
    expect(() => seconds('soon')).toThrow(InvalidArgumentError);
    expect(() => seconds('-1')).toThrow(/expected seconds/);
  });

  it('bounds integers', () => {
    expect(prefetchCount('auto')).toBe('auto');
    expect(prefetchCount('0')).toBe(0);
    expect(() => prefetchCount('fast')).toThrow(/'auto' or an integer ≥ 0/);
    expect(integer(0, 9)('9')).toBe(9);
    expect(() => integer(0, 9)('10')).toThrow(/from 0 to 9/);
    expect(() => integer(1)('0')).toThrow(/≥ 1/);
    expect(() => integer(1)('2.5')).toThrow(InvalidArgumentError);
    expect(() => integer(1)('ten')).toThrow(InvalidArgumentError);
  });

  it('parses JSON of the expected shape', () => {
    expect(json('array')('[2, 3]')).toEqual([2, 3]);
    expect(json('object')('{"x": 1}')).toEqual({ x: 1 });
    expect(() => json('array')('{"x": 1}')).toThrow(/JSON array/);
    expect(() => json('object')('[1]')).toThrow(/JSON object/);
    expect(() => json('object')('null')).toThrow(/JSON object/);
    expect(() => json('array')('[2,')).toThrow(/expected JSON/);
  });

  it('splits comma-separated lists and accumulates repeats', () => {
    expect(list('a,b')).toEqual(['a', 'b']);
    expect(list('c', ['a', 'b'])).toEqual(['a', 'b', 'c']);
    expect(() => list('a,,b')).toThrow(/comma-separated/);
  });
});
