import { assert, describe, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import * as Secrets from "../src/system/Secrets.js"

// Random keys of each shape, made here so no real-looking key sits in the repository.
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const from = (alphabet: string, n: number) => Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("")
const alnum = (n: number) => from(ALNUM, n)
const base64Lines = (lines: number) => Array.from({ length: lines }, () => from(`${ALNUM}+/`, 64))

const anthropic = `sk-ant-api03-${from(`${ALNUM}_-`, 93)}AA`
const pem = ["-----BEGIN RSA PRIVATE KEY-----", ...base64Lines(4), "-----END RSA PRIVATE KEY-----"].join("\n")

/** Each kind, a credential of that kind, and the text it appears in. */
const cases: ReadonlyArray<{ readonly kind: Secrets.Kind; readonly secret: string; readonly text?: (s: string) => string }> = [
  { kind: "anthropic-key", secret: anthropic },
  { kind: "anthropic-key", secret: `sk-ant-admin01-${alnum(93)}AA` },
  { kind: "anthropic-key", secret: `sk-ant-oat01-${alnum(60)}` },
  { kind: "openai-key", secret: `sk-proj-${alnum(74)}T3BlbkFJ${alnum(74)}` },
  { kind: "openai-key", secret: `sk-svcacct-${alnum(40)}` },
  { kind: "openai-key", secret: `sk-admin-${alnum(40)}` },
  { kind: "openai-key", secret: `sk-${alnum(20)}T3BlbkFJ${alnum(20)}` },
  { kind: "google-api-key", secret: `AIza${from(`${ALNUM}_-`, 35)}` },
  { kind: "github-token", secret: `ghp_${alnum(36)}` },
  { kind: "github-token", secret: `gho_${alnum(36)}` },
  { kind: "github-token", secret: `ghu_${alnum(36)}` },
  { kind: "github-token", secret: `ghs_${alnum(36)}` },
  { kind: "github-token", secret: `ghr_${alnum(36)}` },
  { kind: "github-token", secret: `github_pat_${from(`${ALNUM}_`, 82)}` },
  { kind: "aws-access-key-id", secret: `AKIA${from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}` },
  { kind: "aws-access-key-id", secret: `ASIA${from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}` },
  { kind: "aws-secret-key", secret: from(`${ALNUM}+/`, 40), text: (s) => `aws_secret_access_key = ${s}` },
  { kind: "aws-secret-key", secret: from(`${ALNUM}+/`, 40), text: (s) => `export AWS_SECRET_ACCESS_KEY="${s}"` },
  { kind: "slack-token", secret: `xoxb-${from("0123456789", 12)}-${from("0123456789", 12)}-${alnum(24)}` },
  { kind: "slack-token", secret: `xoxp-${from("0123456789", 12)}-${from("0123456789", 12)}-${from("0123456789", 12)}-${alnum(32)}` },
  { kind: "slack-token", secret: `xapp-1-A${alnum(10)}-${from("0123456789", 13)}-${alnum(64).toLowerCase()}` },
  { kind: "slack-webhook", secret: `https://hooks.slack.com/services/T${alnum(8)}/B${alnum(8)}/${alnum(24)}` },
  { kind: "private-key", secret: pem },
  { kind: "private-key", secret: ["-----BEGIN OPENSSH PRIVATE KEY-----", ...base64Lines(3), "-----END OPENSSH PRIVATE KEY-----"].join("\r\n") },
  { kind: "authorization", secret: alnum(40), text: (s) => `curl -H "Authorization: Bearer ${s}" https://api.example.com` },
  { kind: "authorization", secret: Buffer.from(`user:${alnum(12)}`).toString("base64"), text: (s) => `Authorization: Basic ${s}` },
  { kind: "authorization", secret: alnum(30), text: (s) => `{"authorization":"token ${s}"}` },
  { kind: "authorization", secret: `${alnum(20)}.${alnum(30)}.${alnum(19)}0`, text: (s) => `sent bearer ${s} to the proxy` },
  { kind: "url-credentials", secret: alnum(20), text: (s) => `git push https://x-access-token:${s}@github.com/o/r.git` },
  { kind: "url-key", secret: alnum(24), text: (s) => `GET https://example.com/v1/models?alt=json&key=${s}` },
  { kind: "stripe-key", secret: `sk_live_${alnum(24)}` },
  { kind: "groq-key", secret: `gsk_${alnum(52)}` },
  { kind: "xai-key", secret: `xai-${alnum(80)}` }
]

describe("Secrets.scrub", () => {
  for (const c of cases) {
    it(`hides ${c.kind} (${c.secret.slice(0, 12)}…)`, () => {
      const text = c.text?.(c.secret) ?? `the agent printed ${c.secret} and went on`
      const out = Secrets.scrub(text)
      assert.notInclude(out, c.secret)
      assert.include(out, Secrets.marker(c.kind))
    })
  }

  it("keeps what says where the credential was: the header's name, the URL's user and host", () => {
    const token = alnum(40)
    assert.strictEqual(Secrets.scrub(`Authorization: Bearer ${token}`), "Authorization: Bearer [redacted:authorization]")
    assert.strictEqual(
      Secrets.scrub(`https://x-access-token:${token}@github.com/o/r`),
      "https://x-access-token:[redacted:url-credentials]@github.com/o/r"
    )
    assert.strictEqual(Secrets.scrub(`aws_secret_access_key=${token}`), "aws_secret_access_key=[redacted:aws-secret-key]")
  })

  it("hides a private key block across lines, keeping the text around it", () => {
    const out = Secrets.scrub(`before\n${pem}\nafter`)
    assert.strictEqual(out, "before\n[redacted:private-key]\nafter")
  })

  it("hides a private key block cut off at either end", () => {
    const lines = pem.split("\n")
    const noEnd = `key:\n${lines.slice(0, 3).join("\n")}`
    assert.strictEqual(Secrets.scrub(noEnd), "key:\n[redacted:private-key]")
    const noBegin = `${lines.slice(2).join("\n")}\ndone`
    assert.strictEqual(Secrets.scrub(noBegin), "[redacted:private-key]\ndone")
  })

  it("hides keys cut short or masked by a provider's error message", () => {
    const out = Secrets.scrub("AuthenticationError: Incorrect API key provided: sk-ant-t**********0000.")
    assert.notInclude(out, "sk-ant-t")
    assert.include(out, "[redacted:anthropic-key]")
  })

  it("hides the values it is given, 8 characters or more, the longest first", () => {
    const key = `planted-${alnum(12)}`
    const out = Secrets.scrub(`a ${key} b ${key}-suffix short`, [key.slice(0, 10), key, "short", undefined])
    assert.notInclude(out, key.slice(0, 10))
    assert.include(out, "[redacted:secret]")
    assert.include(out, "short")
  })

  it("leaves ordinary text alone: prose, hashes, ids, task names, masked passwords", () => {
    const texts = [
      "Implemented the login form and its tests; all checks pass.",
      `commit ${randomBytes(20).toString("hex")} (sha256 ${randomBytes(32).toString("hex")})`,
      "session 3f1c2a9e-8b4d-4e6f-9a7b-1c2d3e4f5a6b resumed",
      "task-sk-1 and desk-top and risk-assessment-document-for-q3 and sk-learn",
      "the token expired; the bearer of this message; Authorization: required",
      "AKIAIOSFODNN7EXAMPLE is the documentation's example key",
      "cannot reach the database postgres://braid:***@127.0.0.1:1/x",
      "ssh://git@github.com/o/r.git and git@github.com:o/r.git",
      "https://github.com/o/r/pull/12?tab=files&key=1",
      "[redacted:anthropic-key] stays a marker"
    ]
    for (const text of texts) assert.strictEqual(Secrets.scrub(text), text)
  })

  it("is idempotent: scrubbing scrubbed text changes nothing", () => {
    const once = Secrets.scrub(cases.map((c) => c.text?.(c.secret) ?? c.secret).join("\n"))
    assert.strictEqual(Secrets.scrub(once), once)
  })
})

describe("Secrets.scrubValue", () => {
  it("scrubs every string in nested arrays and objects, and returns untouched parts as they were", () => {
    const clean = { commit: "abc", files: ["a.ts"] }
    const value = { key: "stream/api", value: { summary: `printed ${anthropic}`, attempts: [{ said: [`ghp_${alnum(36)}`] }], clean, n: 3, none: null } }
    const out = Secrets.scrubValue(value)
    assert.notInclude(JSON.stringify(out), anthropic)
    assert.deepStrictEqual(out.value.attempts, [{ said: ["[redacted:github-token]"] }])
    assert.strictEqual(out.value.clean, clean)
    assert.strictEqual(out.value.n, 3)
    assert.strictEqual(value.value.summary, `printed ${anthropic}`, "the input is not changed")
  })

  it("returns the same value when nothing matches", () => {
    const value = { a: ["x", { b: "y" }], c: 1 }
    assert.strictEqual(Secrets.scrubValue(value), value)
  })

  it("keeps the properties it is told to keep", () => {
    const value = { files: [{ path: "test/fixture.pem", content: pem }], summary: pem }
    const out = Secrets.scrubValue(value, { keep: (key) => key === "content" })
    assert.strictEqual(out.files[0]!.content, pem)
    assert.strictEqual(out.summary, "[redacted:private-key]")
  })
})

describe("Secrets.lineScrubber", () => {
  it("hides every line of a private key block printed line by line", () => {
    const scrubLine = Secrets.lineScrubber()
    const out = ["starting", ...pem.split("\n"), `then ${anthropic}`, "done"].map(scrubLine)
    assert.deepStrictEqual(out, [
      "starting",
      ...pem.split("\n").map(() => "[redacted:private-key]"),
      "then [redacted:anthropic-key]",
      "done"
    ])
  })
})
