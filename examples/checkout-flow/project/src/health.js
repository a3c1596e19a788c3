export const health = () => ({ status: 200, body: "ok" })
