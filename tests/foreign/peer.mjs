// A foreign libp2p peer: js-libp2p, another implementation than the node's, to try a
// Passerelle node from outside its own code. It dials the node, subscribes to the
// network's gossip topic, asks for catch-up on /passerelle/sync/1, and reports on stdout,
// one JSON object a line, everything it was given:
//   {"event":"peer","id":…}                       its own peer id, first
//   {"event":"connected"} / {"event":"disconnected"}
//   {"event":"protocols","protocols":[…]}          what the node offers on this connection
//   {"event":"message","document":…,"author":…,"seq":…,"message":…,"bytes":…}
//                                                  each gossiped change, its Automerge part
//                                                  decoded with @automerge/automerge
//   {"event":"sync","documents":[…],"bundles":…,"signatures":…,"verified":…}
//                                                  what a catch-up request was answered;
//                                                  it asks for compact bundles, and checks
//                                                  each signature sent apart from its change
//                                                  against the change read from the bundle's
//                                                  document with @automerge/automerge
//   {"event":"sync_error","error":…}
//   {"event":"flood","asked":…,"answered":…,"failed":…}  with --flood-sync
//   {"event":"done","messages":…}                  after --seconds
//
// Usage: node peer.mjs --dial MULTIADDR --topic TOPIC --network ID --seconds N
//                      [--key ed25519|secp256k1] [--seed HEX32 (an ed25519 seed to use)]
//                      [--flood-sync N (N catch-up requests as fast as they go, 8 at a time)]
//                      [--redial-every N (while flooding, hang up and dial again every N)]
import './polyfill.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { generateKeyPair, generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as cborg from 'cborg'
import * as Automerge from '@automerge/automerge'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const out = (object) => process.stdout.write(JSON.stringify(object) + '\n')

let privateKey
if (args.seed) {
  privateKey = await generateKeyPairFromSeed('Ed25519', Buffer.from(args.seed, 'hex'))
} else {
  privateKey = await generateKeyPair(args.key === 'secp256k1' ? 'secp256k1' : 'Ed25519')
}

const node = await createLibp2p({
  privateKey,
  addresses: { listen: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true })
  }
})
out({ event: 'peer', id: node.peerId.toString() })

// The signed-change envelope (docs/data-model.md): magic, document id, author, signature,
// then the Automerge change.
function readEnvelope (bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const docLen = view.getUint16(4)
  const document = new TextDecoder().decode(bytes.subarray(6, 6 + docLen))
  let at = 6 + docLen
  const author = Buffer.from(bytes.subarray(at, at + 32)).toString('hex')
  at += 32
  const signed = new TextDecoder().decode(bytes.subarray(0, 4)) === 'PSC1'
  if (signed) at += 64
  const changeLen = view.getUint32(at)
  at += 4
  const change = bytes.subarray(at, at + changeLen)
  let decoded = null
  try {
    const c = Automerge.decodeChange(change)
    decoded = { actor: c.actor, seq: c.seq, message: c.message, ops: c.ops.length }
  } catch (e) {
    decoded = { error: String(e) }
  }
  return { document, author, ...decoded }
}

let messages = 0
node.services.pubsub.addEventListener('message', (event) => {
  messages += 1
  const data = event.detail.data
  let envelope
  try { envelope = readEnvelope(data) } catch (e) { envelope = { error: String(e) } }
  out({ event: 'message', topic: event.detail.topic, bytes: data.length, ...envelope })
})
node.addEventListener('peer:connect', () => out({ event: 'connected' }))
node.addEventListener('peer:disconnect', () => out({ event: 'disconnected' }))
node.addEventListener('peer:identify', (event) => {
  out({ event: 'protocols', protocols: event.detail.protocols })
})
node.services.pubsub.subscribe(args.topic)

const target = multiaddr(args.dial)
try {
  await node.dial(target)
} catch (e) {
  out({ event: 'dial_error', error: String(e) })
}

// The bytes an author signs for a change (docs/data-model.md): the domain tag, 0, the
// envelope version, the document id (u16 BE length, bytes), the change hash, the author.
function signingBytes (document, hash, author) {
  const id = new TextEncoder().encode(document)
  const length = Buffer.alloc(2)
  length.writeUInt16BE(id.length)
  return Buffer.concat([
    Buffer.from('passerelle/signed-change'), Buffer.from([0, 1]), length, Buffer.from(id),
    Buffer.from(hash, 'hex'), Buffer.from(author, 'hex')
  ])
}

// A compact bundle's signatures (change hash, then signature), each checked against the
// change of that hash in the bundle's document, signed by the change's actor.
async function checkSignatures (bundle) {
  let signatures = 0
  let verified = 0
  const doc = Automerge.load(bundle.automerge)
  const changes = new Map()
  for (const raw of Automerge.getAllChanges(doc)) {
    const change = Automerge.decodeChange(raw)
    changes.set(change.hash, change)
  }
  for (const entry of bundle.signatures ?? []) {
    signatures += 1
    const hash = Buffer.from(entry.subarray(0, 32)).toString('hex')
    const change = changes.get(hash)
    if (!change) continue
    const key = publicKeyFromRaw(Buffer.from(change.actor, 'hex'))
    if (await key.verify(signingBytes(bundle.document, hash, change.actor), entry.subarray(32, 96))) {
      verified += 1
    }
  }
  return { signatures, verified }
}

// Catch-up: "I hold nothing; send me what I lack" (CBOR, as the node's codec).
async function askSync () {
  try {
    const stream = await node.dialProtocol(target, '/passerelle/sync/1')
    stream.send(cborg.encode({ documents: [], network: args.network, compact: true }))
    await stream.close()
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk.subarray ? chunk.subarray() : chunk)
    const response = cborg.decode(Buffer.concat(chunks.map((c) => Buffer.from(c))))
    const documents = new Set()
    for (const change of response.changes ?? []) documents.add(readEnvelope(change).document)
    let signatures = 0
    let verified = 0
    for (const bundle of response.documents ?? []) {
      documents.add(bundle.document)
      const checked = await checkSignatures(bundle)
      signatures += checked.signatures
      verified += checked.verified
    }
    out({ event: 'sync', documents: [...documents].sort(), changes: (response.changes ?? []).length, bundles: (response.documents ?? []).length, signatures, verified })
  } catch (e) {
    out({ event: 'sync_error', error: String(e) })
  }
}
setTimeout(askSync, 500)

// A peer that asks for catch-up in a loop, as fast as the node lets it.
const flood = { asked: 0, answered: 0, failed: 0, redials: 0 }
const redialEvery = Number(args['redial-every'] ?? 0)
async function floodSync (count) {
  const request = cborg.encode({ documents: [], network: args.network })
  async function one () {
    while (flood.asked < count) {
      flood.asked += 1
      if (redialEvery > 0 && flood.asked % redialEvery === 0) {
        // Hang up and dial again: a fresh connection must not mean a fresh budget.
        try { await node.hangUp(target); await node.dial(target) } catch (e) {}
        flood.redials += 1
      }
      try {
        const stream = await node.dialProtocol(target, '/passerelle/sync/1', { signal: AbortSignal.timeout(2000) })
        stream.send(request)
        await stream.close()
        let bytes = 0
        for await (const chunk of stream) bytes += chunk.byteLength ?? chunk.length
        if (bytes > 0) flood.answered += 1; else flood.failed += 1
      } catch (e) {
        flood.failed += 1
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, one))
  out({ event: 'flood', ...flood })
}
if (args['flood-sync']) setTimeout(() => floodSync(Number(args['flood-sync'])), 700)

function report () {
  if (args['flood-sync']) out({ event: 'flood', ...flood })
  out({ event: 'done', messages })
}
setTimeout(async () => {
  report()
  await node.stop()
  process.exit(0)
}, Number(args.seconds ?? 5) * 1000)
// Stopped early (SIGTERM from the test): report as at the end.
process.on('SIGTERM', () => {
  report()
  process.exit(0)
})
