/**
 * Unknown fields in a plan document: a misspelled field (`verfy:`, `dependOn:`) would
 * otherwise be dropped silently and the plan would mean less than its author meant. A field
 * close to a known one in that place is an error with a suggestion; any other unknown field
 * is a warning (the seed's descriptive fields, notes a team keeps in its plans).
 *
 * @internal
 */
import type { SchemaAST } from "effect"

/** The fields known at each place of a document; `each` describes the children of a list or record. */
export interface Shape {
  readonly fields: ReadonlyArray<string>
  /** Field name → the shape of its value (an object, or each element of a list, or each value of a record). */
  readonly nested?: Readonly<Record<string, { readonly kind: "object" | "list" | "record"; readonly shape: Shape }>>
}

/** One unknown field, where it is, and the known field it is probably a misspelling of. */
export interface Unknown {
  readonly path: string
  readonly field: string
  readonly suggestion: string | undefined
}

/** Edit distance (insertions, deletions, substitutions, adjacent transpositions). */
export const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The known name `word` is most likely a misspelling of, if any is close enough. */
export const closest = (word: string, known: ReadonlyArray<string>): string | undefined => {
  const lower = word.toLowerCase()
  let best: { name: string; d: number } | undefined
  for (const name of known) {
    // Close: a couple of slips, fewer for short names; or the same word in another case.
    const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)))
    // Lengths further apart than the limit are never close (and a huge unknown key costs nothing).
    if (Math.abs(word.length - name.length) > limit) continue
    const d = distance(lower, name.toLowerCase())
    if (d <= limit && (best === undefined || d < best.d)) best = { name, d }
  }
  return best?.name
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Every unknown field of `value` against `shape`, depth first, in document order. */
export const unknownFields = (value: unknown, shape: Shape, path = ""): Array<Unknown> => {
  if (!isObject(value)) return []
  const found: Array<Unknown> = []
  const at = (key: string) => (path === "" ? key : `${path}.${key}`)
  for (const [key, child] of Object.entries(value)) {
    if (!shape.fields.includes(key)) {
      found.push({ path: at(key), field: key, suggestion: closest(key, shape.fields) })
      continue
    }
    const nested = shape.nested?.[key]
    if (nested === undefined) continue
    if (nested.kind === "object") found.push(...unknownFields(child, nested.shape, at(key)))
    else if (nested.kind === "list" && Array.isArray(child)) {
      child.forEach((element, i) => found.push(...unknownFields(element, nested.shape, `${at(key)}[${i}]`)))
    } else if (nested.kind === "record" && isObject(child)) {
      for (const [name, element] of Object.entries(child)) found.push(...unknownFields(element, nested.shape, `${at(key)}.${name}`))
    }
  }
  return found
}

/** What a Schema holds under a field, as `Shape.nested` says it: an object, a list or a record of objects. */
export type Nested = NonNullable<Shape["nested"]>[string]

/** The Schema behind optional, refined and class wrappers (a class's fields are its `from` side). */
const unwrap = (ast: SchemaAST.AST): SchemaAST.AST => {
  for (;;) {
    if (ast._tag === "Transformation" || ast._tag === "Refinement") ast = ast.from
    else if (ast._tag === "Union") {
      const kept = ast.types.filter((t) => t._tag !== "UndefinedKeyword" && t._tag !== "Literal")
      if (kept.length !== 1) return ast
      ast = kept[0]!
    } else return ast
  }
}

const objectShape = (ast: SchemaAST.AST): Shape | undefined => {
  const literal = unwrap(ast)
  if (literal._tag !== "TypeLiteral" || literal.propertySignatures.length === 0) return undefined
  const nested: Record<string, Nested> = {}
  for (const p of literal.propertySignatures) {
    const inner = nestedOf(p.type)
    if (inner !== undefined) nested[String(p.name)] = inner
  }
  return { fields: literal.propertySignatures.map((p) => String(p.name)), nested }
}

/**
 * The fields a Schema knows at each place of its value, for finding misspellings in a part of
 * the plan a backend declares (`Plan.TaskField`): undefined where it holds no object.
 */
export const nestedOf = (ast: SchemaAST.AST): Nested | undefined => {
  const inner = unwrap(ast)
  const object = objectShape(inner)
  if (object !== undefined) return { kind: "object", shape: object }
  if (inner._tag === "TypeLiteral" && inner.indexSignatures.length === 1) {
    const shape = objectShape(inner.indexSignatures[0]!.type)
    return shape === undefined ? undefined : { kind: "record", shape }
  }
  if (inner._tag === "TupleType" && inner.elements.length === 0 && inner.rest.length === 1) {
    const shape = objectShape(inner.rest[0]!.type)
    return shape === undefined ? undefined : { kind: "list", shape }
  }
  return undefined
}
