import * as path from 'node:path';

/**
 * The control socket's default path: /run/nuse/nuse.sock for root, otherwise
 * $XDG_RUNTIME_DIR/nuse/nuse.sock (or /tmp/nuse-UID/nuse.sock without XDG_RUNTIME_DIR).
 * `nuse daemon --socket` and `nuse run --socket` change it; `nuse run` also reads NUSE_SOCKET.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  if (uid === 0) return '/run/nuse/nuse.sock';
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '' && path.isAbsolute(runtime))
    return path.join(runtime, 'nuse', 'nuse.sock');
  return `/tmp/nuse-${uid}/nuse.sock`;
}
