/**
 * Exports a run's trace over OTLP/HTTP (`--otlp URL`, else `OTEL_EXPORTER_OTLP_ENDPOINT`):
 * the span `Orchestrator.run` and every span under it, through `@effect/opentelemetry`'s own
 * OTLP tracer (JSON over HTTP). `Cli.ts` imports this module only when a collector is named,
 * so a run without one loads none of it.
 *
 * @since 0.1.0
 */
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Config, Effect, Layer, Option, Tracer } from "effect"
import * as Help from "./Help.js"

/** The span a run's trace starts at. */
export const ROOT = "Orchestrator.run"

/**
 * Where spans go: a collector's base URL gets the signal's path (`/v1/traces`), as
 * `OTEL_EXPORTER_OTLP_ENDPOINT` means it; a URL that names the path already is kept.
 */
export const tracesUrl = (endpoint: string): string => {
  const url = endpoint.trim().replace(/\/+$/, "")
  return url.endsWith("/v1/traces") ? url : `${url}/v1/traces`
}

/** `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key=value`, values URL-encoded), as headers. */
const headersOf = (text: string): Record<string, string> =>
  Object.fromEntries(
    text.split(",").flatMap((pair) => {
      const at = pair.indexOf("=")
      if (at <= 0) return []
      const value = pair.slice(at + 1).trim()
      let decoded = value
      try {
        decoded = decodeURIComponent(value)
      } catch {
        // Not URL-encoded after all: the value as written.
      }
      return [[pair.slice(0, at).trim(), decoded]]
    })
  )

/**
 * Only the run's trace: `Orchestrator.run` (made a root, whatever the command did before it)
 * and the spans under it go to the collector; the command's own spans around the run (reading
 * the journal, GitHub's last writes) stay with the tracer that was there.
 */
const runOnly = (exporting: Tracer.Tracer, local: Tracer.Tracer): Tracer.Tracer => {
  const exported = new WeakSet<Tracer.AnySpan>()
  return Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const root = name === ROOT
      if (!root && !(Option.isSome(parent) && exported.has(parent.value))) {
        return local.span(name, parent, context, links, startTime, kind, options)
      }
      const span = exporting.span(name, root ? Option.none() : parent, context, links, startTime, kind, options)
      exported.add(span)
      return span
    },
    context: exporting.context
  })
}

/**
 * The tracer exporting to `url` (a collector's base URL): spans are sent in batches as they
 * end and the rest when the layer's scope closes, so the command's end flushes them.
 */
export const layer = (url: string): Layer.Layer<never> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const local = yield* Effect.tracer
    const headers = yield* Config.string("OTEL_EXPORTER_OTLP_HEADERS").pipe(Config.withDefault(""))
    const serviceName = yield* Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("braid"))
    const exporting = yield* OtlpTracer.make({
      url: tracesUrl(url),
      resource: { serviceName, serviceVersion: Help.VERSION },
      headers: headersOf(headers),
      shutdownTimeout: "5 seconds"
    })
    return Layer.setTracer(runOnly(exporting, local))
  }).pipe(Effect.orDie)).pipe(
    Layer.provide(Layer.merge(FetchHttpClient.layer, OtlpSerialization.layerJson))
  )
