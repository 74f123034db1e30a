/**
 * Exit codes of `chaperone`: 0 success, 2 the input was wrong (a usage error, a bad ID, selector, TTL, config, policy or
 * bundle, a duplicate or unknown entry, an unknown federated bundle, a bad device registration or birth certificate,
 * an unknown device, a bad, unknown, existing or config-defined federation relationship), 1 anything else (the agent unreachable, a failure on its side, an agent without `fleet:`).
 */
import { CommanderError } from 'commander'
import { ChaperoneError } from '../spiffe/errors'

const EXIT_OK = 0
const EXIT_FAILURE = 1
const EXIT_BAD_INPUT = 2

/** Our codes that mean the caller's input was wrong. */
const INPUT_CODES = new Set([
  'ERR_CONFIG_INVALID', 'ERR_SPIFFE_ID_INVALID', 'ERR_TRUST_DOMAIN_INVALID', 'ERR_ENTRY_INVALID', 'ERR_SELECTOR_INVALID',
  'ERR_ENTRY_DUPLICATE', 'ERR_ENTRY_NOT_FOUND', 'ERR_ADMIN_REQUEST_INVALID', 'ERR_WORKLOAD_API_ADDRESS', 'ERR_WORKLOAD_API_INVALID_REQUEST',
  'ERR_POLICY_INVALID', 'ERR_POLICY_REQUEST_INVALID', 'ERR_BUNDLE_INVALID', 'ERR_BUNDLE_NOT_FOUND', 'ERR_BUNDLE_OWN_TRUST_DOMAIN',
  'ERR_AUTHORITY_INVALID', 'ERR_AUTHORITY_KEY_ID_IN_USE', 'ERR_AUTHORITY_NOT_FOUND', 'ERR_AUTHORITY_OF_CA',
  'ERR_AGENT_INVALID', 'ERR_AGENT_NOT_FOUND', 'ERR_FLEET_REGISTRATION_INVALID', 'ERR_FLEET_BIRTH_CERT_INVALID',
  'ERR_RELATIONSHIP_INVALID', 'ERR_RELATIONSHIP_NOT_FOUND', 'ERR_RELATIONSHIP_EXISTS', 'ERR_RELATIONSHIP_FROM_CONFIG'
])

export function exitCodeOf (err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT
  if (err instanceof ChaperoneError && INPUT_CODES.has((err as ChaperoneError).code)) return EXIT_BAD_INPUT
  return EXIT_FAILURE
}
