/** Micro-benchmark: SPIFFE ID parsing (valid and invalid input), the first step of every peer check. */
import { parseSpiffeId } from '../../spiffe/id'
import { measure } from '../measure'
import type { Rate } from '../measure'

const VALID = [
  'spiffe://plant.example/frontend',
  'spiffe://plant.example/ns/production/sa/api-gateway',
  'spiffe://edge-device-0042.factory.example.com/vendor-a/app/telemetry-collector',
  'spiffe://td'
]
const INVALID = [
  'spiffe://plant.example/a//b',
  'SPIFFE://plant.example/frontend',
  'spiffe://plant.example:8080/frontend',
  'spiffe://plant.example/frontend/'
]

export function benchSpiffeId (): Rate[] {
  return [
    measure('parseSpiffeId, valid IDs', i => parseSpiffeId(VALID[i & 3])),
    measure('parseSpiffeId, invalid IDs (throws)', i => {
      try {
        return parseSpiffeId(INVALID[i & 3])
      } catch (err) {
        return err
      }
    })
  ]
}
