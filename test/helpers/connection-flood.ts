/**
 * A connection flood, as a script for `node -e` run as another user (setpriv): opens `total` Unix socket
 * connections to `socket`, `parallel` at a time, each held idle; one closed by the server within 300 ms counts as
 * refused, one still open then as kept. Prints {"refused":N,"kept":M} and closes what it kept. Not a test itself.
 */
export const FLOOD = `
const { connect } = require('node:net')
const [socket, total, parallel] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
let started = 0, refused = 0, kept = 0
const open = []
function next () {
  if (started === total) return
  started++
  const conn = connect(socket).on('error', () => {})
  let settled = false
  const settle = closed => {
    if (settled) return
    settled = true
    if (closed) refused++; else { kept++; open.push(conn) }
    if (refused + kept === total) { process.stdout.write(JSON.stringify({ refused, kept })); for (const c of open) c.destroy() } else next()
  }
  conn.on('close', () => settle(true))
  setTimeout(() => settle(false), 300)
}
for (let n = 0; n < parallel; n++) next()
`
