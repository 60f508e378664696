import { Prefix, parseIp } from '../wire/address';
import { ForwardingTable } from './route-table';

describe('ForwardingTable', () => {
  test('IPv4: the longest matching prefix wins, whatever the insertion order', () => {
    const t = new ForwardingTable<string>();
    t.add(Prefix.parse('0.0.0.0/0'), 'default');
    t.add(Prefix.parse('10.0.0.0/8'), 'ten');
    t.add(Prefix.parse('10.1.2.3/24'), 'ten-one-two'); // host bits ignored
    t.add(Prefix.parse('10.1.2.128/25'), 'upper-half');
    t.add(Prefix.parse('10.1.2.200/32'), 'host');
    expect(t.lookup(parseIp('10.1.2.200'))).toBe('host');
    expect(t.lookup(parseIp('10.1.2.201'))).toBe('upper-half');
    expect(t.lookup(parseIp('10.1.2.127'))).toBe('ten-one-two');
    expect(t.lookup(parseIp('10.9.9.9'))).toBe('ten');
    expect(t.lookup(parseIp('192.0.2.1'))).toBe('default');
    expect(t.lookup(parseIp('255.255.255.255'))).toBe('default');
    expect(t.entries().map((e) => `${e.prefix}`)).toEqual([
      '10.1.2.200/32',
      '10.1.2.128/25',
      '10.1.2.0/24',
      '10.0.0.0/8',
      '0.0.0.0/0',
    ]);
  });

  test('IPv6: prefixes that end inside a byte', () => {
    const t = new ForwardingTable<string>();
    t.add(Prefix.parse('2001:db8::/32'), 'doc');
    t.add(Prefix.parse('2001:db8:8000::/33'), 'upper');
    t.add(Prefix.parse('fe80::/10'), 'link-local');
    expect(t.lookup(parseIp('2001:db8:7fff::1'))).toBe('doc');
    expect(t.lookup(parseIp('2001:db8:8000::1'))).toBe('upper');
    expect(t.lookup(parseIp('febf::1'))).toBe('link-local');
    expect(t.lookup(parseIp('fec0::1'))).toBeUndefined();
    expect(t.lookup(parseIp('10.0.0.1'))).toBeUndefined();
    t.add(Prefix.parse('::/0'), 'default');
    expect(t.lookup(parseIp('fec0::1'))).toBe('default');
    // Families never mix.
    expect(t.lookup(parseIp('0.0.0.1'))).toBeUndefined();
  });

  test('a route for the same prefix replaces the old one; remove deletes exactly one prefix', () => {
    const t = new ForwardingTable<string>();
    t.add(Prefix.parse('10.0.0.0/8'), 'a');
    t.add(Prefix.parse('10.0.0.0/16'), 'b');
    t.add(Prefix.parse('10.5.0.0/8'), 'c');
    expect(t.lookup(parseIp('10.9.0.1'))).toBe('c');
    expect(t.entries()).toHaveLength(2);
    expect(t.remove(Prefix.parse('10.0.0.0/8'))).toBe(true);
    expect(t.remove(Prefix.parse('10.0.0.0/8'))).toBe(false);
    expect(t.lookup(parseIp('10.9.0.1'))).toBeUndefined();
    expect(t.lookup(parseIp('10.0.1.1'))).toBe('b');
    t.add(Prefix.parse('fd00::/8'), 'v6');
    expect(t.remove(Prefix.parse('fd00::/8'))).toBe(true);
    expect(t.lookup(parseIp('fd00::1'))).toBeUndefined();
  });
});
