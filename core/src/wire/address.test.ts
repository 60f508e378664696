import { Random } from '../util/random';
import {
  addressEquals,
  formatIp,
  formatIpv4,
  formatIpv6,
  isIpv4Mapped,
  Prefix,
  parseIp,
  parseIpv4,
  parseIpv6,
} from './address';
import { ParseError } from './parse-error';

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function expectParseError(run: () => unknown, reason: string): void {
  let error: unknown;
  try {
    run();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ParseError);
  expect(error).toMatchObject({ layer: 'address', reason });
}

describe('IPv4 text', () => {
  test.each([
    ['0.0.0.0', [0, 0, 0, 0]],
    ['10.0.0.1', [10, 0, 0, 1]],
    ['192.0.2.255', [192, 0, 2, 255]],
    ['255.255.255.255', [255, 255, 255, 255]],
  ])('%s', (text, expected) => {
    expect(parseIpv4(text)).toEqual(bytes(...expected));
    expect(formatIpv4(parseIpv4(text))).toBe(text);
  });

  test.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.1000',
    '01.2.3.4', // leading zero: octal to inet_aton
    '1.2.3.-4',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1..2.3',
    '0x1.2.3.4',
    '1.2.3.4/24',
  ])('refuses %j', (text) => expectParseError(() => parseIpv4(text), 'bad-ipv4'));

  test('formatIpv4 wants 4 bytes', () => {
    expect(() => formatIpv4(new Uint8Array(16))).toThrow(RangeError);
  });
});

describe('IPv6 text (RFC 4291 §2.2 in, RFC 5952 out)', () => {
  test.each([
    // Full form, leading zeros, upper case (RFC 5952 §4.1, §4.3)
    ['2001:0DB8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    // §4.2.2: one zero group is not shortened
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run is shortened, the first one on a tie
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['fe80::1', 'fe80::1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'], // "::" may stand for one group on input
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['1:0:0:4:0:0:0:8', '1:0:0:4::8'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // Embedded IPv4 (§2.2 form 3); §5: mapped addresses print dotted
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::FFFF:c000:0201', '::ffff:192.0.2.1'],
    ['0:0:0:0:0:ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('%s → %s', (text, canonical) => {
    const address = parseIpv6(text);
    expect(address).toHaveLength(16);
    expect(formatIpv6(address)).toBe(canonical);
    expect(parseIpv6(canonical)).toEqual(address);
  });

  test('bytes of a known address', () => {
    expect(parseIpv6('2001:db8::ff00:42:8329')).toEqual(
      bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29),
    );
  });

  test.each([
    '',
    ':',
    ':::',
    '1::2::3',
    '1:::2',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    ':1::',
    '1::2:',
    ':1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:',
    '::1.2.3',
    '::1.2.3.256',
    '::01.2.3.4',
    '1.2.3.4::',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    'fe80::1%eth0',
    '1.2.3.4',
    ' ::1',
  ])('refuses %j', (text) => expectParseError(() => parseIpv6(text), 'bad-ipv6'));

  test('random addresses: format is canonical (WHATWG URL agrees) and parses back', () => {
    const random = new Random('ipv6-format');
    for (let n = 0; n < 2000; n++) {
      const address = random.fill(new Uint8Array(16));
      // Zero groups at random places so that "::" choices get exercised.
      for (let i = 0; i < 16; i += 2) {
        if (random.chance(0.5)) {
          address[i] = 0;
          address[i + 1] = 0;
        }
      }
      const text = formatIpv6(address);
      expect(parseIpv6(text)).toEqual(address);
      if (!isIpv4Mapped(address)) expect(new URL(`http://[${text}]/`).hostname).toBe(`[${text}]`);
    }
  });
});

describe('either family', () => {
  test('parseIp and formatIp choose by text and by length', () => {
    expect(parseIp('192.0.2.1')).toHaveLength(4);
    expect(parseIp('2001:db8::1')).toHaveLength(16);
    expect(formatIp(parseIp('192.0.2.1'))).toBe('192.0.2.1');
    expect(formatIp(parseIp('2001:db8::1'))).toBe('2001:db8::1');
    expectParseError(() => parseIp('example.com'), 'bad-ipv4');
  });

  test('addressEquals compares length and bytes', () => {
    expect(addressEquals(parseIp('10.0.0.1'), parseIp('10.0.0.1'))).toBe(true);
    expect(addressEquals(parseIp('10.0.0.1'), parseIp('10.0.0.2'))).toBe(false);
    expect(addressEquals(parseIp('0.0.0.0'), parseIp('::'))).toBe(false);
    expect(addressEquals(parseIp('::ffff:10.0.0.1'), parseIp('10.0.0.1'))).toBe(false);
  });
});

describe('Prefix', () => {
  test('IPv4: contains exactly the addresses whose first bits match', () => {
    const prefix = Prefix.parse('10.0.0.0/8');
    expect(prefix.family).toBe(4);
    expect(prefix.length).toBe(8);
    expect(prefix.contains(parseIp('10.255.1.2'))).toBe(true);
    expect(prefix.contains(parseIp('11.0.0.0'))).toBe(false);
    expect(prefix.contains(parseIp('::ffff:10.0.0.1'))).toBe(false);
    expect(prefix.toString()).toBe('10.0.0.0/8');
  });

  test('a prefix length not on a byte boundary', () => {
    const prefix = Prefix.parse('192.0.2.7/27');
    expect(formatIp(prefix.network)).toBe('192.0.2.0');
    expect(prefix.toString()).toBe('192.0.2.7/27'); // the address is kept as written
    expect(prefix.contains(parseIp('192.0.2.31'))).toBe(true);
    expect(prefix.contains(parseIp('192.0.2.32'))).toBe(false);
  });

  test('/0 and the host prefixes', () => {
    expect(Prefix.parse('0.0.0.0/0').contains(parseIp('203.0.113.9'))).toBe(true);
    expect(Prefix.parse('::/0').contains(parseIp('2001:db8::1'))).toBe(true);
    expect(Prefix.parse('::/0').contains(parseIp('10.0.0.1'))).toBe(false);
    expect(Prefix.parse('10.0.0.1/32').contains(parseIp('10.0.0.1'))).toBe(true);
    expect(Prefix.parse('10.0.0.1/32').contains(parseIp('10.0.0.0'))).toBe(false);
    expect(Prefix.parse('2001:db8::1/128').contains(parseIp('2001:db8::1'))).toBe(true);
    expect(Prefix.parse('2001:db8::1/128').contains(parseIp('2001:db8::'))).toBe(false);
  });

  test('IPv6', () => {
    const prefix = Prefix.parse('2001:db8::/32');
    expect(prefix.family).toBe(6);
    expect(prefix.contains(parseIp('2001:db8:ffff::1'))).toBe(true);
    expect(prefix.contains(parseIp('2001:db9::'))).toBe(false);
    expect(Prefix.parse('fe80::/10').contains(parseIp('febf::1'))).toBe(true);
    expect(Prefix.parse('fe80::/10').contains(parseIp('fec0::1'))).toBe(false);
    expect(formatIp(Prefix.parse('2001:db8:abcd:12ff::1/60').network)).toBe('2001:db8:abcd:12f0::');
  });

  test.each(['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0.0/8/8', '::/129', '/8'])(
    'refuses %j',
    (text) => {
      expect(() => Prefix.parse(text)).toThrow(ParseError);
    },
  );

  test('Prefix.of copies the address and checks the length', () => {
    const address = parseIp('192.0.2.0');
    const prefix = Prefix.of(address, 24);
    address[0] = 0;
    expect(prefix.toString()).toBe('192.0.2.0/24');
    expect(() => Prefix.of(address, 33)).toThrow(RangeError);
    expect(() => Prefix.of(new Uint8Array(5), 8)).toThrow(RangeError);
  });
});
