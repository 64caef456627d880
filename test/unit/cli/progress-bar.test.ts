import { describe, expect, it } from 'vitest';
import { progressBar } from '../../../src/cli/progress.js';

describe('progressBar', () => {
  it('fills in proportion, clamps, and treats an empty total as done', () => {
    expect(progressBar(0, 10, 10)).toBe('[░░░░░░░░░░]');
    expect(progressBar(5, 10, 10)).toBe('[█████░░░░░]');
    expect(progressBar(12, 10, 4)).toBe('[████]');
    expect(progressBar(0, 0, 3)).toBe('[███]');
  });
});
