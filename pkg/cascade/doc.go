// Package cascade holds the hubhooks cascade rules: which webhook events one
// domain event becomes, and what each one carries as payload.
//
// The rules are data. The default set, rules.json (embedded; docs/cascade.md
// lists it), has one rule per domain subject (e.g. API.CREATED), each
// listing the webhook events it emits in order. An emitted event names the
// field of the domain event's data that is its payload ("from", by default the
// field of its entity in the file's payloadFields table, e.g. BILLINGPLAN ->
// billingPlan) or a list field to expand ("forEach": one event per element,
// the element being the payload). When data lacks the "from" field the whole
// data is the payload.
//
// Use Default for the built-in rules or Load for an alternative file with the
// same format; both validate the rules. A *Rules is immutable and safe for
// concurrent use.
//
//	rules := cascade.Default()
//	events, err := rules.Expand("API.CREATED", data)
//	for i, ev := range events { // ev.Type, ev.Data (JSON), i is the index for webhook.EventID
//	}
package cascade
