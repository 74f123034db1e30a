/** A table's SQL, prepared once when the store opens: one statement per name. */
import type Database from 'better-sqlite3'

export type Statements<S> = { readonly [K in keyof S]: Database.Statement }

export function prepareStatements<S extends Readonly<Record<string, string>>> (db: Database.Database, sql: S): Statements<S> {
  return Object.fromEntries(Object.entries(sql).map(([name, text]) => [name, db.prepare(text)])) as Statements<S>
}
