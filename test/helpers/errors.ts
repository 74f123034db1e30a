/** Error assertions shared by tests (test/helpers/ holds no tests: tap runs only *.test.ts). */
import { ChaperoneError } from '../../spiffe/errors'

/** Runs fn and returns the ChaperoneError it throws; returning, or throwing anything else, fails the calling test. */
export function thrown (fn: () => unknown): ChaperoneError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ChaperoneError) return err as ChaperoneError
    throw err
  }
  throw new Error('expected a ChaperoneError, got none')
}
