# A platform team's policy on qmspec plans, for conftest (https://www.conftest.dev) or OPA, run on the saved plan
# of a pull request:   qmspec plan specs/docs.yaml --env prod --out plan.json && conftest test plan.json -p examples/policy
# The fields it reads are those of schemas/plan.schema.json (stable within a major version).
package main

import rego.v1

# No destructive rule accepted in production, whatever the spec's policy.allow says.
deny contains msg if {
	input.env == "prod"
	some finding in input.findings
	startswith(finding.code, "DS")
	msg := sprintf("%s is not accepted in production (%s): %s", [finding.code, finding.title, finding.message])
}

# Re-embedding a large collection is a cost and a risk someone signs for.
deny contains msg if {
	re_embedded := sum([step.points |
		some step in input.steps
		step.kind in {"copy_points", "embed_vectors", "backfill_vector"}
		count(object.get(step, "embed", {})) > 0
	])
	re_embedded > 1000000
	msg := sprintf("the plan re-embeds %d points; more than 1,000,000 needs the search team's review", [re_embedded])
}

# Every plan that swaps an alias verifies first.
deny contains msg if {
	some swap in input.steps
	swap.kind == "swap_alias"
	not any_verify
	msg := sprintf("alias %s would swap without a verify step", [input.alias])
}

any_verify if {
	some step in input.steps
	step.kind == "verify"
}
