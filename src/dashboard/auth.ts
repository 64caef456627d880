import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/** How the dashboard is protected: HTTP basic (`user:pass`) or a bearer token, or nothing (loopback only). */
export type DashboardAuth = { user: string; password: string } | { token: string } | null;

const COOKIE = 'celeriac_dashboard';

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `user:pass` → basic auth (the password may contain `:`). */
export function parseAuth(value: string): { user: string; password: string } {
  const i = value.indexOf(':');
  if (i <= 0 || i === value.length - 1) throw new Error('expected user:password');
  return { user: value.slice(0, i), password: value.slice(i + 1) };
}

/**
 * Checks every request when auth is configured: basic auth (`Authorization: Basic`), or the token
 * as `Authorization: Bearer T`, as a `?token=T` query (which sets an HttpOnly, SameSite=Strict
 * cookie so the page and its event stream keep working), or that cookie. Actions (POST) also need
 * the `X-Celeriac-Action` header, which a cross-site form or image cannot send (CSRF).
 */
export function authMiddleware(auth: DashboardAuth): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'POST' && c.req.header('x-celeriac-action') !== '1')
      return c.json({ error: 'actions need the X-Celeriac-Action: 1 header' }, 403);
    if (!auth) return next();
    const header = c.req.header('authorization') ?? '';
    if ('token' in auth) {
      const query = c.req.query('token');
      const given = header.startsWith('Bearer ') ? header.slice(7) : (query ?? getCookie(c, COOKIE) ?? '');
      if (!same(given, auth.token)) return c.json({ error: 'a valid token is required' }, 401);
      if (query) setCookie(c, COOKIE, query, { httpOnly: true, sameSite: 'Strict', path: '/' });
      return next();
    }
    if (header.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0 && same(decoded.slice(0, i), auth.user) && same(decoded.slice(i + 1), auth.password))
        return next();
    }
    return c.body('authentication required', 401, { 'www-authenticate': 'Basic realm="celeriac"' });
  };
}
