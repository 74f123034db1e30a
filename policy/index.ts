/**
 * policy/ — the "who can talk to whom" file operators edit: its JSON Schema and validation, compilation into a
 * fast decision engine (an authorizer `(peerId, context) → Decision`, default deny, deny beats allow), hot reload,
 * and the answers behind `chaperone policy`. May import spiffe/ only. Arrives with the policy issue.
 */
export {}
