/**
 * Durable file writes for the CA state: a file is on disk, with its contents, before anything refers to it, and the
 * manifest is replaced in one atomic rename, so a crash (kill -9, power loss) at any moment leaves either the old or
 * the new state. Every file is created 0600: the directory holds the CA's private keys.
 */
import { open, rename } from 'node:fs/promises'

const PRIVATE_FILE_MODE = 0o600

/** Creates a new file (never overwrites one) and flushes it to disk. */
export async function writeNewFile (path: string, data: string): Promise<void> {
  await writeAndSync(path, data, 'wx')
}

/**
 * Replaces a file atomically: write a temporary sibling, flush it, rename it over the target (POSIX rename is atomic),
 * then flush the directory so the rename itself survives a power loss.
 */
export async function replaceFile (path: string, data: string, directory: string): Promise<void> {
  const temporary = `${path}.tmp`
  await writeAndSync(temporary, data, 'w')
  await rename(temporary, path)
  await syncDirectory(directory)
}

/** Flushes a directory's entries (files created, renamed or removed in it) to disk. */
export async function syncDirectory (directory: string): Promise<void> {
  const handle = await open(directory, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function writeAndSync (path: string, data: string, flags: string): Promise<void> {
  const handle = await open(path, flags, PRIVATE_FILE_MODE)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
