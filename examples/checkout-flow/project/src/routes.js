import { health } from "./health.js"

/** Method and path → handler. Each handler gets the parsed JSON body and returns { status, body }. */
export const routes = {
  "GET /health": health
}
