// Verify the war room's signed actions and warnings with Node's built-in crypto, offline.
//
//   node verify.mjs jwks.json < messages.jsonl     prints "true" or "false" per line
//
// The canonical encoding is the one schemas/signing.py describes: the message without its
// top-level "signature", keys sorted by code point at every depth, no whitespace, non-ASCII
// text as itself. Messages hold no floats, so a number that is not an integer is refused.
import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const byCodePoint = (a, b) => {
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
};

export function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const members = Object.keys(value).sort(byCodePoint);
    return "{" + members.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return JSON.stringify(value); // strings: the same escapes as Python's json.dumps(ensure_ascii=False)
}

export function verifyMessage(raw, jwks) {
  try {
    const message = JSON.parse(raw);
    const { signature, ...signed } = message; // only the top-level "signature" is left out
    if (typeof signature !== "string" || !signature.startsWith("ed25519=")) return false;
    const jwk = jwks.keys.find((k) => k.kid === signed.kid);
    if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519") return false;
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
    const data = Buffer.from(canonical(signed), "utf8");
    return verify(null, data, key, Buffer.from(signature.slice("ed25519=".length), "base64url"));
  } catch {
    return false; // not JSON, a float, a malformed key or signature: not a message we signed
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const jwks = JSON.parse(readFileSync(process.argv[2], "utf8"));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim()) console.log(String(verifyMessage(line, jwks)));
  }
}
