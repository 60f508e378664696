/**
 * @nuse/plugin-mptcp: Multipath TCP v1 (RFC 8684) for nuse. So far the wire layer:
 * the option codec (wire/mptcp-option.ts) and the cryptography (crypto.ts); the
 * plugin itself arrives with issue 6 (docs/mptcp.md).
 */
export * from './crypto';
export * from './wire/mptcp-option';
