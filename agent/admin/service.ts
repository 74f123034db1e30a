/**
 * The admin API's handlers: thin translations between admin.proto messages and the registration store (entries,
 * federated bundles, the authorities appended to our bundle, the fleet's devices), the CA and the fleet's port.
 * Every failure answers with a gRPC status and our stable error code in the trailing metadata; input errors are
 * logged at info, anything unexpected at error (and answered INTERNAL without internals).
 */
import { dirname } from 'node:path'
import { Metadata, status } from '@grpc/grpc-js'
import type { ServerUnaryCall, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { ChaperoneError } from '../../spiffe/errors'
import type { FederatedBundleFormat, RegistrationEntry, RegistrationStore } from '../store'
import type { AgentCa } from '../ca'
import type { WorkloadAdmission } from '../workload/admission'
import { ERROR_CODE_METADATA } from './grpc-proto'
import { UPDATABLE_FIELDS, entryToMessage, messageToInput, messageToPatch } from './entry-message'
import { notServedReason } from './entry-served'
import type { EntryMessage } from './entry-message'
import { caStatusMessage } from './ca-message'
import { bundleToMessage, federatedBundleToMessage } from './bundle-message'
import { appendedAuthorityCalls } from './appended-authority-calls'
import { fleetCalls } from './fleet-calls'
import { federationCalls } from './federation-calls'
import type { Federation } from '../federation/federation'
import type { FleetServer } from '../fleet'
import type { WorkloadApiStatusMessage } from './workload-api-message'
import { AgentError } from '../errors'
import { statusDetails } from '../status-details'
import { isWriteFailure, unwritableReason } from '../unwritable'
import { EntryError } from '../store'

/** Our codes that are the caller's mistake, with the gRPC status that says so. */
const INPUT_ERRORS: Record<string, status> = {
  ERR_ENTRY_INVALID: status.INVALID_ARGUMENT,
  ERR_SELECTOR_INVALID: status.INVALID_ARGUMENT,
  ERR_SPIFFE_ID_INVALID: status.INVALID_ARGUMENT,
  ERR_TRUST_DOMAIN_INVALID: status.INVALID_ARGUMENT,
  ERR_ADMIN_REQUEST_INVALID: status.INVALID_ARGUMENT,
  ERR_ENTRY_DUPLICATE: status.ALREADY_EXISTS,
  ERR_ENTRY_NOT_FOUND: status.NOT_FOUND,
  ERR_BUNDLE_INVALID: status.INVALID_ARGUMENT,
  ERR_BUNDLE_OWN_TRUST_DOMAIN: status.INVALID_ARGUMENT,
  ERR_BUNDLE_NOT_FOUND: status.NOT_FOUND,
  ERR_AUTHORITY_INVALID: status.INVALID_ARGUMENT,
  ERR_AUTHORITY_KEY_ID_IN_USE: status.ALREADY_EXISTS,
  ERR_AUTHORITY_NOT_FOUND: status.NOT_FOUND,
  ERR_AUTHORITY_OF_CA: status.FAILED_PRECONDITION,
  ERR_AGENT_INVALID: status.INVALID_ARGUMENT,
  ERR_AGENT_NOT_FOUND: status.NOT_FOUND,
  ERR_FLEET_NOT_CONFIGURED: status.FAILED_PRECONDITION,
  ERR_FLEET_REGISTRATION_INVALID: status.INVALID_ARGUMENT,
  ERR_FLEET_BIRTH_CERT_INVALID: status.INVALID_ARGUMENT,
  ERR_RELATIONSHIP_INVALID: status.INVALID_ARGUMENT,
  ERR_RELATIONSHIP_NOT_FOUND: status.NOT_FOUND,
  ERR_RELATIONSHIP_EXISTS: status.ALREADY_EXISTS,
  ERR_RELATIONSHIP_FROM_CONFIG: status.FAILED_PRECONDITION,
  // The other trust domain's endpoint, not this agent: the caller may try again.
  ERR_BUNDLE_FETCH_FAILED: status.UNAVAILABLE
}

export interface AdminDeps {
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly workloadApi: WorkloadAdmission
  /** The upstream role's server, once started; undefined without `fleet:`. */
  readonly fleet: () => FleetServer | undefined
  readonly federation: Federation
  readonly logger: Logger
}

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void

export function adminHandlers ({ store, ca, workloadApi, fleet, federation, logger }: AdminDeps): UntypedServiceImplementation {
  /** Runs `work` and answers with its result (or what it resolves to) or a mapped error; `what` names the call in logs. */
  function unary<Req, Res> (what: string, work: (request: Req) => Res | Promise<Res>): Handler<Req, Res> {
    return (call, callback) => {
      Promise.resolve().then(() => work(call.request)).then(result => { callback(null, result) }, (err: unknown) => {
        const code = err instanceof ChaperoneError ? (err as ChaperoneError).code : undefined
        const grpcStatus = code === undefined ? undefined : INPUT_ERRORS[code]
        const metadata = new Metadata()
        if (grpcStatus !== undefined && code !== undefined) {
          logger.info({ call: what, code, err: (err as Error).message }, 'admin request refused')
          metadata.set(ERROR_CODE_METADATA, code)
          callback({ code: grpcStatus, details: statusDetails((err as Error).message), metadata })
          return
        }
        // The disk, not the request: say which (read-only, full, permissions), here and in the log.
        const reason = isWriteFailure(err) ? unwritableReason(dirname(store.path)) : undefined
        if (reason !== undefined) {
          logger.error({ call: what, err, reason }, `admin request failed: ${reason}`)
          metadata.set(ERROR_CODE_METADATA, 'ERR_STORE_UNWRITABLE')
          callback({ code: status.UNAVAILABLE, details: `the agent could not ${what}: ${reason}`, metadata })
        } else {
          logger.error({ call: what, err }, 'admin request failed')
          callback({ code: status.INTERNAL, details: `the agent failed to ${what}; see its log`, metadata })
        }
      })
    }
  }

  const appended = appendedAuthorityCalls(store, ca, logger)
  const message = (entry: RegistrationEntry): EntryMessage => entryToMessage(entry, notServedReason(store, entry, Math.floor(Date.now() / 1000)))
  const devices = fleetCalls({ store, trustDomain: ca.trustDomain, fleet, entryMessage: message, logger })
  const relationships = federationCalls(store, federation, logger)

  return {
    CreateEntry: unary('create an entry', (m: EntryMessage) => message(store.createEntry(messageToInput(m)))),
    UpdateEntry: unary('update an entry', (r: { entry: EntryMessage | null, fields: string[] }) => {
      const unknown = r.fields.filter(name => !UPDATABLE_FIELDS.includes(name))
      if (r.entry === null || r.fields.length === 0 || unknown.length > 0) {
        throw new AgentError('ERR_ADMIN_REQUEST_INVALID', unknown.length > 0
          ? `cannot update ${unknown.join(', ')}; updatable fields are ${UPDATABLE_FIELDS.join(', ')}`
          : 'an update needs the entry id and at least one field to change')
      }
      return message(store.updateEntry(r.entry.id, messageToPatch(r.entry, r.fields)))
    }),
    DeleteEntry: unary('delete an entry', (r: { id: string }) => message(store.deleteEntry(r.id))),
    GetEntry: unary('get an entry', (r: { id: string }) => {
      const entry = store.getEntry(r.id)
      if (entry === undefined) throw new EntryError('ERR_ENTRY_NOT_FOUND', `no entry with id ${JSON.stringify(r.id)}`)
      return message(entry)
    }),
    ListEntries: unary('list entries', (r: { spiffe_id: string, selector: string }) => ({
      entries: store.listEntries({
        ...(r.spiffe_id === '' ? {} : { spiffeId: r.spiffe_id }),
        ...(r.selector === '' ? {} : { selector: r.selector })
      }).map(message)
    })),
    GetBundle: unary('show the bundle', () => bundleToMessage(store.ownBundle(ca.bundle()))),
    AppendAuthorities: unary('append authorities to the bundle', appended.append),
    RemoveAppendedAuthority: unary('remove an appended authority', appended.remove),
    SetFederatedBundle: unary('set a federated bundle', (r: { trust_domain: string, format: string, bundle: string }) =>
      federatedBundleToMessage(store.setFederatedBundle({ trustDomain: r.trust_domain, format: r.format as FederatedBundleFormat, bundle: r.bundle }))),
    GetFederatedBundle: unary('show a federated bundle', (r: { trust_domain: string }) => federatedBundleToMessage(store.getFederatedBundle(r.trust_domain))),
    ListFederatedBundles: unary('list federated bundles', () => ({ bundles: store.listFederatedBundles().map(federatedBundleToMessage) })),
    DeleteFederatedBundle: unary('delete a federated bundle', (r: { trust_domain: string }) => federatedBundleToMessage(store.deleteFederatedBundle(r.trust_domain))),
    // The bundle's sequence number as served: the CA's, plus the appended authorities' changes.
    GetCaStatus: unary('show the CA', () => caStatusMessage(ca.trustDomain.name, { ...ca.status(), bundleSequence: store.ownBundle(ca.bundle()).sequence ?? 0 })),
    RegisterDevice: unary('register a fleet device', devices.register),
    ListDevices: unary('list the fleet\'s devices', devices.list),
    BanDevice: unary('ban a fleet device', devices.ban),
    EvictDevice: unary('evict a fleet device', devices.evict),
    GetFleetStatus: unary('show the fleet', devices.status),
    CreateRelationship: unary('create a federation relationship', relationships.create),
    UpdateRelationship: unary('update a federation relationship', relationships.update),
    DeleteRelationship: unary('delete a federation relationship', relationships.delete),
    GetRelationship: unary('show a federation relationship', relationships.get),
    ListRelationships: unary('list federation relationships', relationships.list),
    RefreshRelationship: unary('refresh a federated bundle', relationships.refresh),
    GetWorkloadApiStatus: unary('show the Workload API', (): WorkloadApiStatusMessage => {
      const { open, refused, openFiles } = workloadApi.status()
      const { idleTimeoutMs, maxConnectionsPerUid, reservedDescriptors } = workloadApi.limits
      return {
        open_connections: open,
        refused,
        idle_timeout_ms: idleTimeoutMs,
        max_connections_per_uid: maxConnectionsPerUid,
        reserved_descriptors: reservedDescriptors,
        open_files_limit: openFiles
      }
    })
  }
}
