/**
 * google.protobuf.Struct (ValidateJWTSVIDResponse.claims) to and from plain JSON values, in the shape
 * proto-loader gives with `oneofs: true` (each Value names its `kind`).
 */

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export interface StructMessage { fields: Record<string, ValueMessage> }

export interface ValueMessage {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue'
  nullValue?: string | number
  numberValue?: number
  stringValue?: string
  boolValue?: boolean
  structValue?: StructMessage
  listValue?: { values: ValueMessage[] }
}

export function fromStruct (struct: StructMessage | null | undefined): Record<string, JsonValue> {
  return Object.fromEntries(Object.entries(struct?.fields ?? {}).map(([key, value]) => [key, fromValue(value)]))
}

function fromValue (value: ValueMessage): JsonValue {
  switch (value.kind) {
    case 'numberValue': return value.numberValue ?? 0
    case 'stringValue': return value.stringValue ?? ''
    case 'boolValue': return value.boolValue ?? false
    case 'structValue': return fromStruct(value.structValue)
    case 'listValue': return (value.listValue?.values ?? []).map(fromValue)
    default: return null
  }
}

/** A JSON object as a Struct message (what a Workload API server sends). */
export function toStruct (object: Record<string, unknown>): StructMessage {
  return { fields: Object.fromEntries(Object.entries(object).map(([key, value]) => [key, toValue(value)])) }
}

function toValue (value: unknown): ValueMessage {
  if (typeof value === 'number') return { numberValue: value }
  if (typeof value === 'string') return { stringValue: value }
  if (typeof value === 'boolean') return { boolValue: value }
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } }
  if (value !== null && typeof value === 'object') return { structValue: toStruct(value as Record<string, unknown>) }
  return { nullValue: 'NULL_VALUE' }
}
