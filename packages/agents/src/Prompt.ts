/**
 * What an agent is told for one attempt: its role's identity and responsibilities, the
 * stream's scope, the task, what the stream's earlier tasks did, what was brought in from
 * dependencies, the checks that will judge it, and — on a retry — the latest review in full.
 * The rules braid holds every agent to close it.
 *
 * @since 0.1.0
 */
import type { Agent } from "@braid/core"
import * as Roles from "./Roles.js"

/** The rules every agent is given, whatever its role. */
export const RULES: ReadonlyArray<string> = [
  "Work only inside the current directory (the stream's worktree). Do not read or write files outside it.",
  "Do not run `git commit`, `git push`, `git checkout`, `git switch` or any command that changes branches or history: braid commits your changes after the attempt.",
  "Leave the changes in the working tree; braid decides what changed from the files, not from your report.",
  "When you finish, reply with a short summary of what you changed and why."
]

const list = (items: ReadonlyArray<string>) => items.map((i) => `- ${i}`).join("\n")

const criteria = (task: Agent.AttemptRequest["task"]): ReadonlyArray<string> =>
  task.acceptanceCriteria === undefined
    ? []
    : typeof task.acceptanceCriteria === "string"
    ? [task.acceptanceCriteria]
    : task.acceptanceCriteria

/** The prompt of one attempt, as the agent receives it. */
export const render = (request: Agent.AttemptRequest): string => {
  const { stream, task } = request
  const sections: Array<string> = []
  sections.push(
    `You are the ${request.role} of the ${stream.name} stream, working on ${request.featureName} in ${request.projectName}. ` +
      (Roles.descriptions[request.role] ?? "")
  )
  if (stream.scope.length > 0) sections.push(`## Your scope\n${list(stream.scope)}`)
  const taskLines = [`## Your task: ${task.id} — ${task.title}`]
  if (task.description !== undefined) taskLines.push(task.description)
  const accept = criteria(task)
  if (accept.length > 0) taskLines.push(`Acceptance criteria:\n${list(accept)}`)
  sections.push(taskLines.join("\n\n"))
  if (request.earlier.length > 0) {
    sections.push(
      `## Earlier tasks of this stream\n${
        request.earlier.map((e) =>
          `- ${e.taskId} — ${e.title} (${e.status}): ${e.summary || "no summary"}${
            e.changedFiles.length > 0 ? `\n  changed: ${e.changedFiles.join(", ")}` : ""
          }`
        ).join("\n")
      }`
    )
  }
  if (request.broughtIn.length > 0) {
    sections.push(
      `## Work brought in from other streams (already in your directory)\n${
        request.broughtIn.map((b) =>
          `- ${b.taskId} — ${b.title} (stream ${b.stream}): ${b.summary || "no summary"}${
            b.changedFiles.length > 0 ? `\n  changed: ${b.changedFiles.join(", ")}` : ""
          }`
        ).join("\n")
      }`
    )
  }
  if (request.checks.length > 0) {
    sections.push(
      `## How your work is judged\nAfter you finish, braid runs these commands in this directory; all must pass:\n${
        list(request.checks.map((c) => `\`${c.argv.join(" ")}\``))
      }`
    )
  }
  if (request.feedback !== undefined || request.denied.length > 0 || request.userNote !== undefined) {
    const lines = [`## This is attempt ${request.attempt} of 3. The previous attempt did not pass.`]
    if (request.feedback !== undefined) {
      lines.push(`Review score: ${request.feedback.score} (by ${request.feedback.reviewer}).`)
      if (request.feedback.issues.length > 0) lines.push(`Issues:\n${request.feedback.issues.map((i) => `- ${i.replace(/\n/g, "\n  ")}`).join("\n")}`)
      if (request.feedback.suggestions.length > 0) lines.push(`Suggestions:\n${list(request.feedback.suggestions)}`)
    }
    if (request.denied.length > 0) {
      lines.push(`These tool calls were refused last time (stay inside this directory and the allowed commands):\n${list(request.denied)}`)
    }
    if (request.userNote !== undefined) lines.push(`A note from the person running braid:\n${request.userNote}`)
    sections.push(lines.join("\n\n"))
  }
  sections.push(`## Rules\n${list(RULES)}`)
  return `${sections.join("\n\n")}\n`
}
