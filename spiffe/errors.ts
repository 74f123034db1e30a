/**
 * Errors: every error Chaperone raises on purpose is a ChaperoneError with a stable `code`.
 * A code names one meaning forever (README, "Error codes"); messages may improve, codes never change meaning.
 */

export class ChaperoneError<Code extends string = string> extends Error {
  readonly code: Code

  constructor (code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A SPIFFE ID that breaks a rule of the SPIFFE-ID standard; the message names the rule. */
export class SpiffeIdError extends ChaperoneError {
  constructor (message: string) {
    super('ERR_SPIFFE_ID_INVALID', message)
  }
}

/** A trust domain name that breaks a rule of the SPIFFE-ID standard; the message names the rule. */
export class TrustDomainError extends ChaperoneError {
  constructor (message: string) {
    super('ERR_TRUST_DOMAIN_INVALID', message)
  }
}

/** Bundle problems: a malformed bundle document or certificate, or no bundle for a trust domain. */
export type BundleErrorCode = 'ERR_BUNDLE_INVALID' | 'ERR_BUNDLE_NOT_FOUND'

export class BundleError extends ChaperoneError<BundleErrorCode> {}

/** Why an X509-SVID was rejected; one code per defect (README, "Error codes"). */
export type X509SvidErrorCode =
  | 'ERR_X509_SVID_MISSING'
  | 'ERR_X509_SVID_MALFORMED'
  | 'ERR_X509_SVID_NO_URI_SAN'
  | 'ERR_X509_SVID_MULTIPLE_URI_SANS'
  | 'ERR_X509_SVID_NOT_SPIFFE_URI'
  | 'ERR_X509_SVID_ID_INVALID'
  | 'ERR_X509_SVID_ID_NO_PATH'
  | 'ERR_X509_SVID_LEAF_IS_CA'
  | 'ERR_X509_SVID_KEY_USAGE'
  | 'ERR_X509_SVID_EXT_KEY_USAGE'
  | 'ERR_X509_SVID_CRITICAL_EXTENSION'
  | 'ERR_X509_SVID_EXPIRED'
  | 'ERR_X509_SVID_NOT_YET_VALID'
  | 'ERR_X509_SVID_NO_BUNDLE'
  | 'ERR_X509_SVID_SELF_SIGNED'
  | 'ERR_X509_SVID_WRONG_TRUST_DOMAIN'
  | 'ERR_X509_SVID_UNTRUSTED'
  | 'ERR_X509_SVID_BAD_SIGNATURE'
  | 'ERR_X509_SVID_BAD_SIGNING_CERT'
  | 'ERR_X509_SVID_ID_MISMATCH'

export class X509SvidError extends ChaperoneError<X509SvidErrorCode> {}

/** Why a JWT-SVID was rejected; one code per defect (README, "Error codes"). */
export type JwtSvidErrorCode =
  | 'ERR_JWT_SVID_MALFORMED'
  | 'ERR_JWT_SVID_ALG_UNSUPPORTED'
  | 'ERR_JWT_SVID_TYP_INVALID'
  | 'ERR_JWT_SVID_KID_MISSING'
  | 'ERR_JWT_SVID_SUB_INVALID'
  | 'ERR_JWT_SVID_NO_BUNDLE'
  | 'ERR_JWT_SVID_KEY_NOT_FOUND'
  | 'ERR_JWT_SVID_BAD_SIGNATURE'
  | 'ERR_JWT_SVID_AUD_MISSING'
  | 'ERR_JWT_SVID_AUD_MISMATCH'
  | 'ERR_JWT_SVID_EXP_MISSING'
  | 'ERR_JWT_SVID_EXPIRED'
  | 'ERR_JWT_SVID_NOT_YET_VALID'

export class JwtSvidError extends ChaperoneError<JwtSvidErrorCode> {}
