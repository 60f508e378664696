/**
 * IP protocol numbers: the IPv4 Protocol field and the IPv6 Next Header field share
 * one IANA registry ("Assigned Internet Protocol Numbers", RFC 5237).
 */
export const IpProtocol = {
  /** IPv6 Hop-by-Hop Options (RFC 8200 §4.3). */
  IPV6_HOP_BY_HOP: 0,
  ICMP: 1,
  IGMP: 2,
  /** IPv4 encapsulated in IP (RFC 2003). */
  IPV4: 4,
  TCP: 6,
  UDP: 17,
  /** IPv6 encapsulated in IP (RFC 2473). */
  IPV6: 41,
  /** IPv6 Routing header (RFC 8200 §4.4). */
  IPV6_ROUTING: 43,
  /** IPv6 Fragment header (RFC 8200 §4.5). */
  IPV6_FRAGMENT: 44,
  GRE: 47,
  /** Encapsulating Security Payload (RFC 4303): opaque, ends any header walk. */
  ESP: 50,
  /** Authentication Header (RFC 4302). */
  AH: 51,
  /** ICMPv6 (RFC 4443). */
  IPV6_ICMP: 58,
  /** IPv6 No Next Header (RFC 8200 §4.7). */
  IPV6_NO_NEXT_HEADER: 59,
  /** IPv6 Destination Options (RFC 8200 §4.6). */
  IPV6_DESTINATION_OPTIONS: 60,
  SCTP: 132,
} as const;
