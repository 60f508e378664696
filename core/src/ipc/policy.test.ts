import { parseIp } from '../wire/address';
import { EMPTY_POLICY, keptOnKernel, type Policy, parsePrefix, parsePrefixList } from './policy';

const policy = (p: Partial<Policy>): Policy => ({ ...EMPTY_POLICY, ...p });

describe('policy', () => {
  test('prefixes: ADDR/LEN or a bare address (a host); lists split on commas and white space', () => {
    expect(String(parsePrefix('10.0.0.0/8'))).toBe('10.0.0.0/8');
    expect(String(parsePrefix(' 192.0.2.7 '))).toBe('192.0.2.7/32');
    expect(String(parsePrefix('fd00::1'))).toBe('fd00::1/128');
    expect(parsePrefixList('10.0.0.0/8, fd00::/8  192.0.2.0/24').map(String)).toEqual([
      '10.0.0.0/8',
      'fd00::/8',
      '192.0.2.0/24',
    ]);
    expect(parsePrefixList('')).toEqual([]);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'ten', '10.0.0.0/', '/8', '10.0.0.0/8/8'])
      expect(() => parsePrefix(bad)).toThrow(/is not a prefix/);
    expect(() => parsePrefixList(Array(65).fill('10.0.0.1').join(','))).toThrow(/more than 64/);
  });

  test('loopback always stays on the kernel; kernel prefixes of any layer; outside any layer\'s "only"', () => {
    const a = parseIp('10.1.2.3');
    const b = parseIp('192.0.2.9');
    expect(keptOnKernel(parseIp('127.0.0.53'))).toBe(true);
    expect(keptOnKernel(parseIp('::1'))).toBe(true);
    expect(keptOnKernel(a)).toBe(false);
    expect(keptOnKernel(a, EMPTY_POLICY, policy({ kernel: [parsePrefix('10.0.0.0/8')] }))).toBe(true);
    expect(keptOnKernel(b, EMPTY_POLICY, policy({ kernel: [parsePrefix('10.0.0.0/8')] }))).toBe(false);
    const only = policy({ only: [parsePrefix('192.0.2.0/24')] });
    expect(keptOnKernel(a, only)).toBe(true);
    expect(keptOnKernel(b, only)).toBe(false);
    // The daemon keeps b on the kernel even though the program's "only" holds it.
    expect(keptOnKernel(b, policy({ kernel: [parsePrefix('192.0.2.9')] }), only)).toBe(true);
    // v4 prefixes do not hold v6 addresses.
    expect(keptOnKernel(parseIp('fd00::1'), policy({ kernel: [parsePrefix('0.0.0.0/0')] }))).toBe(false);
  });
});
