import { createServer } from "node:http"
import { routes } from "./routes.js"

/** Handles one request through the route table; exported so tests need no socket. */
export const handle = async (method, path, body) => {
  const route = routes[`${method} ${path}`]
  if (route === undefined) return { status: 404, body: "not found" }
  return route(body === undefined ? undefined : body)
}

export const server = () =>
  createServer((req, res) => {
    let text = ""
    req.on("data", (chunk) => (text += chunk))
    req.on("end", async () => {
      const result = await handle(req.method, req.url, text === "" ? undefined : JSON.parse(text))
      res.writeHead(result.status, { "content-type": typeof result.body === "string" ? "text/plain" : "application/json" })
      res.end(typeof result.body === "string" ? result.body : JSON.stringify(result.body))
    })
  })

if (process.argv[1] === new URL(import.meta.url).pathname) server().listen(process.env.PORT ?? 3000)
