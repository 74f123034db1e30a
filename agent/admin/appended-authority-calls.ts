/**
 * The admin API's calls on the authorities appended to our own trust domain's bundle: append those of a bundle
 * document (PEM certificates, or a SPIFFE bundle with JWT keys too), remove one; each answers with what it did and
 * the bundle as now served, and is logged, since it changes what every workload trusts.
 */
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import { authorityName, parseBundleDocument } from '../store'
import type { AppendedAuthorities, FederatedBundleFormat, RegistrationStore } from '../store'
import { appendedAuthoritiesToMessage, documentToAuthorities, messageToAuthorityRef } from './appended-authority-message'
import type { AppendedAuthoritiesMessage, AuthoritiesChanged } from './appended-authority-message'

export interface AppendedAuthorityCalls {
  readonly append: (request: { format: string, bundle: string }) => AppendedAuthoritiesMessage
  readonly remove: (request: { sha256: string, key_id: string }) => AppendedAuthoritiesMessage
}

export function appendedAuthorityCalls (store: RegistrationStore, ca: AgentCa, logger: Logger): AppendedAuthorityCalls {
  const answer = (appended: AppendedAuthorities, changed: AuthoritiesChanged): AppendedAuthoritiesMessage =>
    appendedAuthoritiesToMessage(store.ownBundle(ca.bundle()), appended, changed, Math.floor(Date.now() / 1000))
  return {
    append: request => {
      const document = parseBundleDocument(ca.trustDomain, request.format as FederatedBundleFormat, request.bundle)
      const { appended, added, present } = store.appendAuthorities(documentToAuthorities(document), ca.bundle())
      logger.info({ added: added.map(authorityName), present: present.map(authorityName) }, 'admin: authorities appended to our trust domain\'s bundle')
      return answer(appended, { added, present })
    },
    remove: request => {
      const { appended, removed } = store.removeAppendedAuthority(messageToAuthorityRef(request), ca.bundle())
      logger.info({ removed: authorityName(removed) }, 'admin: an appended authority removed from our trust domain\'s bundle')
      return answer(appended, { removed })
    }
  }
}
