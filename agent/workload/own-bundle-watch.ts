/**
 * When our own trust domain's bundle, as workloads get it (the store's ownBundle), changes: the CA's bundle changed
 * (a rotation), authorities were appended to it or removed, or an appended authority expired (at that moment, by a
 * timer, since no write announces it).
 */
import type { AgentCa } from '../ca'
import { isAppendedAuthoritiesChange, nextExpiry } from '../store'
import type { RegistrationStore } from '../store'

/** setTimeout's longest delay (about 24.8 days); a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Calls `onChange` after each change of our bundle; returns the function that stops watching. */
export function watchOwnBundle (ca: AgentCa, store: RegistrationStore, onChange: () => void): () => void {
  let timer: NodeJS.Timeout | undefined
  const scheduleExpiry = (): void => {
    clearTimeout(timer)
    const at = nextExpiry(store.appendedAuthorities(), Math.floor(Date.now() / 1000))
    if (at === undefined) return
    timer = setTimeout(() => {
      scheduleExpiry()
      onChange()
    }, Math.min(at * 1000 - Date.now(), MAX_TIMER_MS)).unref()
  }
  const unsubscribe = [
    ca.onBundleChange(onChange),
    store.onChange(change => {
      if (!isAppendedAuthoritiesChange(change)) return
      scheduleExpiry()
      onChange()
    })
  ]
  scheduleExpiry()
  return () => {
    clearTimeout(timer)
    for (const stop of unsubscribe) stop()
  }
}
