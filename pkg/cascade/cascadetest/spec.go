// Package cascadetest holds, for tests, the cascade table (docs/cascade.md)
// written out by hand — not derived from rules.json, so that a wrong rules
// file fails the tests that compare against it.
package cascadetest

// Row is one row of the table: a domain event and the webhook events it
// emits (without row 1's forEach events, which depend on the payload).
type Row struct {
	Name    string
	Subject string
	Emits   []string
}

// SpecRows is the table, in the specification's order (44 rows).
var SpecRows = []Row{
	{Name: "API Created", Subject: "API.CREATED", Emits: []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED"}},
	{Name: "API Updated", Subject: "API.UPDATED", Emits: []string{"API.UPDATED", "API_VERSION.UPDATED"}},
	{Name: "API Deleted", Subject: "API.DELETED", Emits: []string{"API.DELETED", "BILLINGPLAN.DELETED"}},
	{Name: "Subscription Created", Subject: "SUBSCRIPTION.CREATED", Emits: []string{"SUBSCRIPTION.CREATED", "SUBSCRIPTION.UPDATED"}},
	{Name: "Subscription Updated", Subject: "SUBSCRIPTION.UPDATED", Emits: []string{"SUBSCRIPTION.CREATED", "SUBSCRIPTION.UPDATED"}},
	{Name: "Subscription Deleted", Subject: "SUBSCRIPTION.DELETED", Emits: []string{"SUBSCRIPTION.UPDATED"}},
	{Name: "Billing Plan Created", Subject: "BILLINGPLAN.CREATED", Emits: []string{"API.UPDATED", "API_VERSION.UPDATED", "BILLINGPLAN.CREATED"}},
	{Name: "Billing Plan Updated", Subject: "BILLINGPLAN.UPDATED", Emits: []string{"API.UPDATED", "API_VERSION.UPDATED", "BILLINGPLAN.UPDATED"}},
	{Name: "Billing Plan Deleted", Subject: "BILLINGPLAN.DELETED", Emits: []string{"BILLINGPLAN.UPDATED", "BILLINGPLAN.DELETED"}},
	{Name: "API Version Created", Subject: "API_VERSION.CREATED", Emits: []string{"API_VERSION.CREATED", "BILLINGPLAN.UPDATED"}},
	{Name: "API Version Updated", Subject: "API_VERSION.UPDATED", Emits: []string{"API.UPDATED", "API_VERSION.UPDATED"}},
	{Name: "API Version Deleted", Subject: "API_VERSION.DELETED", Emits: nil},
	{Name: "User Created", Subject: "USER.CREATED", Emits: []string{"APP.CREATED", "APP_KEY.CREATED", "USER.CREATED"}},
	{Name: "User Updated", Subject: "USER.UPDATED", Emits: []string{"USER.UPDATED"}},
	{Name: "User Deleted", Subject: "USER.DELETED", Emits: []string{"USER.DELETED"}},
	{Name: "Team Created", Subject: "TEAM.CREATED", Emits: []string{"APP.CREATED", "APP_KEY.CREATED", "TEAM.CREATED"}},
	{Name: "Team Updated", Subject: "TEAM.UPDATED", Emits: []string{"TEAM.UPDATED"}},
	{Name: "Team Deleted", Subject: "TEAM.DELETED", Emits: []string{"APP.DELETED", "APP_KEY.DELETED", "TEAM.DELETED"}},
	{Name: "App Created", Subject: "APP.CREATED", Emits: []string{"APP.CREATED", "APP_KEY.CREATED"}},
	{Name: "App Updated", Subject: "APP.UPDATED", Emits: []string{"APP.UPDATED"}},
	{Name: "App Deleted", Subject: "APP.DELETED", Emits: []string{"APP.DELETED"}},
	{Name: "App Key Created", Subject: "APP_KEY.CREATED", Emits: []string{"APP_KEY.CREATED"}},
	{Name: "App Key Updated", Subject: "APP_KEY.UPDATED", Emits: []string{"APP_KEY.UPDATED"}},
	{Name: "App Key Deleted", Subject: "APP_KEY.DELETED", Emits: []string{"APP_KEY.DELETED"}},
	{Name: "Organization Created", Subject: "ORGANIZATION.CREATED", Emits: []string{"APP.CREATED", "APP_KEY.CREATED", "ORGANIZATION.CREATED", "TEAM.CREATED", "SUBSCRIPTION.CREATED"}},
	{Name: "Organization Updated", Subject: "ORGANIZATION.UPDATED", Emits: []string{"ORGANIZATION.UPDATED", "TEAM.UPDATED"}},
	{Name: "Organization Deleted", Subject: "ORGANIZATION.DELETED", Emits: []string{"ORGANIZATION.DELETED", "SUBSCRIPTION.DELETED", "APP.DELETED", "TEAM.DELETED"}},
	{Name: "API Endpoint Created", Subject: "API_ENDPOINT.CREATED", Emits: []string{"API_ENDPOINT.CREATED"}},
	{Name: "API Endpoint Updated", Subject: "API_ENDPOINT.UPDATED", Emits: []string{"API_ENDPOINT.UPDATED"}},
	{Name: "API Endpoint Deleted", Subject: "API_ENDPOINT.DELETED", Emits: []string{"API_ENDPOINT.DELETED"}},
	{Name: "Base URL Created", Subject: "BASE_URL.CREATED", Emits: []string{"TARGET_GROUP.CREATED"}},
	{Name: "Base URL Updated", Subject: "BASE_URL.UPDATED", Emits: []string{"TARGET_GROUP.UPDATED"}},
	{Name: "Base URL Deleted", Subject: "BASE_URL.DELETED", Emits: []string{"TARGET_GROUP.DELETED"}},
	{Name: "Documentation Created", Subject: "DOCUMENTATION.CREATED", Emits: []string{"DOCUMENTATION.CREATED"}},
	{Name: "Documentation Updated", Subject: "DOCUMENTATION.UPDATED", Emits: []string{"DOCUMENTATION.UPDATED"}},
	{Name: "Documentation Deleted", Subject: "DOCUMENTATION.DELETED", Emits: []string{"DOCUMENTATION.DELETED"}},
	{Name: "Approval Created", Subject: "WORKFLOW.CREATED", Emits: []string{"WORKFLOW.CREATED"}},
	{Name: "Approval Updated", Subject: "WORKFLOW.UPDATED", Emits: []string{"WORKFLOW.UPDATED"}},
	{Name: "Announcement Created", Subject: "ANNOUNCEMENT.CREATED", Emits: []string{"ANNOUNCEMENT.CREATED"}},
	{Name: "Discussion Created", Subject: "DISCUSSION.CREATED", Emits: []string{"DISCUSSION.CREATED"}},
	{Name: "Message Created", Subject: "MESSAGE.CREATED", Emits: []string{"MESSAGE.CREATED"}},
	{Name: "Discussion Comment Created", Subject: "DISCUSSION_COMMENT.CREATED", Emits: []string{"DISCUSSION_COMMENT.CREATED"}},
	{Name: "Job Created", Subject: "JOBS_REQUEST.CREATED", Emits: []string{"JOBS_REQUEST.CREATED"}},
	{Name: "Job Updated", Subject: "JOBS_REQUEST.UPDATED", Emits: []string{"JOBS_REQUEST.UPDATED"}},
}
