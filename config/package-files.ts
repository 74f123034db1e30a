/**
 * Files shipped with the package (gRPC .proto files): found from the package root, which is two levels up in the
 * source tree (folder/file.ts) and three in the build (dist/folder/file.js).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

let root: string | undefined

/** The directory holding Chaperone's package.json. */
function packageRoot (): string {
  if (root !== undefined) return root
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'chaperone') {
      root = dir
      return dir
    }
    if (dirname(dir) === dir) throw new Error(`cannot find Chaperone's package.json above ${__dirname}`)
  }
}

/** The absolute path of a file shipped with the package, e.g. `agent/admin/admin.proto`. */
export function packageFile (relativePath: string): string {
  return join(packageRoot(), relativePath)
}

/** The package's version. */
export function packageVersion (): string {
  return (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version
}
