import { Review } from "@braid/core"
import { assert, describe, it } from "@effect/vitest"
import * as CommandReviewer from "../src/CommandReviewer.js"

const outcome = (name: string, exitCode: number) => ({ name, exitCode, timedOut: false, outputTail: exitCode === 0 ? "" : "AssertionError: 1 !== 2" })

describe("CommandReviewer", () => {
  it("a failing check fails the gate whatever the threshold, even one the score clears", () => {
    const review = CommandReviewer.score([outcome("lint", 0), outcome("tests", 1)])
    assert.isAtLeast(review.score, 20)
    assert.isFalse(Review.passes(review, 20), "threshold 20 must not let a failing check through")
    assert.isFalse(Review.passes(review, 0))
    assert.deepStrictEqual(review.blockers, ["tests failed"])
    assert.match(review.issues[0]!, /tests exited 1\nAssertionError/)
  })

  it("every check passing scores 100 and passes any threshold", () => {
    const review = CommandReviewer.score([outcome("lint", 0), outcome("tests", 0)])
    assert.strictEqual(review.score, 100)
    assert.isTrue(Review.passes(review, 100))
  })

  it("a review without blockers passes on its score alone", () => {
    const review = new Review.Review({ score: 30, issues: [], suggestions: [] })
    assert.isTrue(Review.passes(review, 20))
    assert.isFalse(Review.passes(review, 31))
  })
})
