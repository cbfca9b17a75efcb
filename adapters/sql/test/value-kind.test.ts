import { describe, expect, test } from 'vitest';
import { kindOf, mergeKinds, textOf } from '../src/value-kind.js';

describe('type inference', () => {
  test('numbers, booleans, objects, arrays and bytes', () => {
    expect([kindOf(1), kindOf(-2.5), kindOf(true), kindOf({ a: 1 }), kindOf([1]), kindOf(new Uint8Array([1]))]).toEqual(['number', 'number', 'boolean', 'json', 'json', 'bytes']);
  });

  test('null and undefined tell nothing about a column', () => {
    expect([kindOf(null), kindOf(undefined)]).toEqual([undefined, undefined]);
  });

  test('dates are real calendar dates, leap years included', () => {
    expect(['2024-05-01', '2024-02-29', '2000-02-29', '1999-12-31'].map(kindOf)).toEqual(['date', 'date', 'date', 'date']);
    expect(['2023-02-29', '1900-02-29', '2024-04-31', '2024-13-01', '2024-00-10', '2024-5-1', '0000-01-01'].map(kindOf)).toEqual(Array(7).fill('text'));
  });

  test('timestamps with a space or T, up to six fractional digits; with a zone they are timestamptz', () => {
    expect(['2024-05-01 10:00:00', '2024-05-01T23:59:59.123456', '2024-05-01 00:00:00.5'].map(kindOf)).toEqual(['timestamp', 'timestamp', 'timestamp']);
    expect(['2024-05-01T10:00:00Z', '2024-05-01 10:00:00.1+02:00', '2024-05-01T10:00:00-0530'].map(kindOf)).toEqual(['timestamptz', 'timestamptz', 'timestamptz']);
    expect(['2024-05-01 24:00:00', '2024-05-01 10:60:00', '2024-05-01T10:00:00.1234567', '2024-05-01T10:00', '2024-05-01 10:00:00 UTC'].map(kindOf)).toEqual(Array(5).fill('text'));
  });

  test('other strings are text', () => {
    expect(['', 'hello', '12345', '1e5', 'true'].map(kindOf)).toEqual(Array(5).fill('text'));
  });

  test('mixed kinds merge to text; nulls do not count', () => {
    expect(mergeKinds('number', 'number')).toBe('number');
    expect(mergeKinds(undefined, 'date')).toBe('date');
    expect(mergeKinds('date', undefined)).toBe('date');
    expect(mergeKinds('number', 'text')).toBe('text');
    expect(mergeKinds('date', 'timestamp')).toBe('text');
  });

  test('text of any value', () => {
    expect([textOf('a'), textOf(1.5), textOf(false), textOf({ a: [1] }), textOf(new Uint8Array([255, 0]))]).toEqual(['a', '1.5', 'false', '{"a":[1]}', '/wA=']);
  });
});
