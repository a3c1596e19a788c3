/**
 * Measuring inside a child process: wall and CPU time of one piece of work, and the
 * process's peak resident memory (sampled every 10 ms, and the kernel's maxRSS).
 */
export const measure = async (work) => {
  let sampled = process.memoryUsage.rss()
  const timer = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage.rss())
  }, 10)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const value = await work()
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  clearInterval(timer)
  sampled = Math.max(sampled, process.memoryUsage.rss())
  return {
    value,
    wallMs: +wallMs.toFixed(1),
    cpuMs: +((cpu.user + cpu.system) / 1000).toFixed(1),
    sampledRssMb: +(sampled / 1048576).toFixed(1),
    maxRssMb: +(process.resourceUsage().maxRSS / 1024).toFixed(1)
  }
}

/** Prints the child's result as the last line of stdout, for the parent to read. */
export const report = (result) => {
  process.stdout.write(`\n@@result ${JSON.stringify(result)}\n`)
}
