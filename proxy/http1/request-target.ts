/**
 * The request-target (RFC 9112 §3.2) checked against its grammar (RFC 3986): a byte the grammar does not allow —
 * `#`, space, `"`, `<`, `>`, `\`, `^`, backtick, `{`, `|`, `}`, brackets outside an IPv6 literal, controls, bytes
 * above 0x7e, a `%` without two hex digits — is refused, never forwarded: servers disagree about what they mean
 * (a Go file server resolves `/public/x#/../../admin` to `/admin`). Absolute-form is turned into origin-form with
 * its authority, so the app and the policy see one path (RFC 9112 §3.2.2: the authority replaces Host).
 */

/** pchar (RFC 3986 §3.3) and `/`; `?` as well in the query. */
const PATH = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
const QUERY = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*"
/** host [":" port]: a reg-name, an IPv4 address, or a bracketed IPv6 literal (RFC 3986 §3.2.2); no userinfo (RFC 9110 §4.2.4). */
export const AUTHORITY = "(?:\\[[0-9A-Fa-f:.]+\\]|(?:[A-Za-z0-9\\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"

const ORIGIN_FORM = new RegExp(`^/${PATH}(?:\\?${QUERY})?$`)
const ABSOLUTE_FORM = new RegExp(`^[Hh][Tt][Tt][Pp][Ss]?://(${AUTHORITY})((?:/${PATH})?(?:\\?${QUERY})?)$`)
const AUTHORITY_FORM = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+):[0-9]{1,5}$/

export interface RequestTarget {
  readonly form: 'origin' | 'absolute' | 'authority' | 'asterisk'
  /** What to send upstream: origin-form (`/path?query`), or as received for authority and asterisk forms. */
  readonly forwarded: string
  /** The authority of an absolute-form or authority-form target. */
  readonly authority: string | undefined
}

/** The target's form and what to forward, or why it is refused. */
export function parseRequestTarget (method: string, target: string): RequestTarget | string {
  if (target.startsWith('/')) return ORIGIN_FORM.test(target) ? { form: 'origin', forwarded: target, authority: undefined } : FORBIDDEN
  if (target === '*') return method === 'OPTIONS' ? { form: 'asterisk', forwarded: target, authority: undefined } : 'the target "*" is only for OPTIONS'
  if (method === 'CONNECT') return AUTHORITY_FORM.test(target) ? { form: 'authority', forwarded: target, authority: target } : 'CONNECT needs a host:port target'
  const absolute = ABSOLUTE_FORM.exec(target)
  if (absolute === null) return /^[a-z][a-z0-9+.-]*:/i.test(target) && !/^https?:\/\//i.test(target) ? 'only http and https URIs can be requested' : FORBIDDEN
  const rest = absolute[2]
  return { form: 'absolute', forwarded: rest.startsWith('/') ? rest : `/${rest}`, authority: absolute[1] }
}

const FORBIDDEN = 'the request target has a character RFC 9112 does not allow there (a fragment "#", a space, a control or non-ASCII byte, one of "<>\\"\\\\^`{|}", or a malformed %-escape): percent-encode it'
