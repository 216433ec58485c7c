package configsvc

import (
	"strings"
	"time"
)

// SamplePayload returns a realistic sample of the data of a webhook event of
// eventType (ENTITY.ACTION), as the "Test event" dialog sends it. Entities
// the built-in rules do not know get a generic object.
func SamplePayload(eventType, hubID string, now time.Time) map[string]any {
	entity, action, _ := strings.Cut(eventType, ".")
	ts := now.UTC().Format(time.RFC3339)
	created := now.Add(-72 * time.Hour).UTC().Format(time.RFC3339)
	status := "ACTIVE"
	if action == "DELETED" {
		status = "DELETED"
	}
	base := func(m map[string]any) map[string]any {
		m["createdAt"] = created
		switch action {
		case "CREATED":
			m["createdAt"] = ts
			m["updatedAt"] = ts
		case "UPDATED":
			m["updatedAt"] = ts
		case "DELETED":
			m["updatedAt"] = ts
			m["deletedAt"] = ts
		}
		return m
	}
	owner := map[string]any{"id": "org_5f1c7e2a", "type": "ORGANIZATION", "name": "Acme Payments"}
	switch entity {
	case "API":
		return base(map[string]any{
			"id": "api_8d3f2b7c", "name": "Payments API", "slug": "payments-api",
			"description": "Create charges, refunds and payouts.", "category": "Finance",
			"visibility": "PUBLIC", "status": status, "type": "HTTP", "owner": owner,
			"currentVersion": map[string]any{"id": "apiversion_41c9e0d5", "name": "v2"},
			"tags":           []any{"payments", "fintech"}, "hubId": hubID,
		})
	case "API_VERSION":
		return base(map[string]any{
			"id": "apiversion_41c9e0d5", "apiId": "api_8d3f2b7c", "name": "v2",
			"status": status, "versionStatus": "ACTIVE", "current": true,
			"specType": "OPENAPI", "specVersion": "3.1.0",
		})
	case "BILLINGPLAN":
		return base(map[string]any{
			"id": "billingplan_2a6e9c14", "apiId": "api_8d3f2b7c", "apiVersionId": "apiversion_41c9e0d5",
			"name": "Pro", "status": status, "visibility": "PUBLIC", "billingPeriod": "MONTHLY",
			"price":  map[string]any{"amount": 49.0, "currency": "USD"},
			"limits": []any{map[string]any{"object": "REQUESTS", "amount": 100000, "period": "MONTHLY", "overageFee": 0.001}},
		})
	case "SUBSCRIPTION":
		s := "ACTIVE"
		if action == "DELETED" {
			s = "CANCELLED"
		}
		return base(map[string]any{
			"id": "subscription_9b2d4f61", "apiId": "api_8d3f2b7c", "billingPlanId": "billingplan_2a6e9c14",
			"appId": "app_c7a1e3f9", "status": s, "subscriber": map[string]any{"id": "user_3e8a5d02", "type": "USER", "email": "dana.lee@example.com"},
			"startedAt": created, "currentPeriodEnd": now.Add(27 * 24 * time.Hour).UTC().Format(time.RFC3339),
		})
	case "TARGET_GROUP":
		return base(map[string]any{
			"id": "targetgroup_6f0b8e33", "apiId": "api_8d3f2b7c", "apiVersionId": "apiversion_41c9e0d5",
			"name": "production", "url": "https://api.acme-payments.example.com/v2",
			"loadBalancer": "ROUND_ROBIN", "status": status, "region": "us-east-1",
		})
	case "USER":
		return base(map[string]any{
			"id": "user_3e8a5d02", "username": "danalee", "email": "dana.lee@example.com",
			"name": "Dana Lee", "status": status, "role": "DEVELOPER",
		})
	case "TEAM":
		return base(map[string]any{
			"id": "team_0d7c2a9e", "organizationId": "org_5f1c7e2a", "name": "Checkout",
			"description": "Owns the checkout flow", "status": status, "memberCount": 7,
		})
	case "ORGANIZATION":
		return base(map[string]any{
			"id": "org_5f1c7e2a", "name": "Acme Payments", "slug": "acme-payments",
			"email": "platform@acme-payments.example.com", "status": status,
			"plan": "ENTERPRISE", "seats": 50,
		})
	case "APP":
		return base(map[string]any{
			"id": "app_c7a1e3f9", "name": "Checkout backend", "description": "Server-side checkout integration",
			"owner": map[string]any{"id": "team_0d7c2a9e", "type": "TEAM"}, "status": status,
		})
	case "APP_KEY":
		return base(map[string]any{
			"id": "appkey_b4e61d08", "appId": "app_c7a1e3f9", "name": "production key",
			"keyPrefix": "ak_live_4f9d", "status": status,
			"expiresAt": now.Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339),
		})
	case "API_ENDPOINT":
		return base(map[string]any{
			"id": "endpoint_7e2c5a90", "apiId": "api_8d3f2b7c", "apiVersionId": "apiversion_41c9e0d5",
			"method": "POST", "route": "/charges", "name": "Create a charge",
			"description": "Charges a payment method.", "group": "Charges",
		})
	case "DOCUMENTATION":
		return base(map[string]any{
			"id": "doc_1a9f3e57", "apiId": "api_8d3f2b7c", "apiVersionId": "apiversion_41c9e0d5",
			"title": "Getting started", "slug": "getting-started", "format": "MARKDOWN", "status": status,
		})
	case "WORKFLOW":
		return base(map[string]any{
			"id": "workflow_5c3b7d21", "type": "API_SUBSCRIPTION_APPROVAL", "status": "PENDING",
			"requester": map[string]any{"id": "user_3e8a5d02", "email": "dana.lee@example.com"},
			"resource":  map[string]any{"type": "BILLINGPLAN", "id": "billingplan_2a6e9c14"},
			"comment":   "Need the Pro plan for the holiday launch.",
		})
	case "ANNOUNCEMENT":
		return base(map[string]any{
			"id": "announcement_8f4a2c60", "apiId": "api_8d3f2b7c", "title": "v1 is deprecated",
			"body": "Payments API v1 will be retired on 2027-03-31. Please migrate to v2.", "severity": "WARNING",
			"author": map[string]any{"id": "user_9c1d4b7e", "name": "Priya Raman"},
		})
	case "DISCUSSION":
		return base(map[string]any{
			"id": "discussion_2e7b9f14", "apiId": "api_8d3f2b7c", "title": "Refunds return 409 intermittently",
			"body": "We see 409 Conflict on POST /refunds about 1% of the time.", "status": "OPEN",
			"author": map[string]any{"id": "user_3e8a5d02", "name": "Dana Lee"},
		})
	case "MESSAGE":
		return base(map[string]any{
			"id": "message_6a0d3c85", "conversationId": "conversation_4b8e1f2a",
			"from": map[string]any{"id": "user_9c1d4b7e", "name": "Priya Raman"},
			"to":   map[string]any{"id": "user_3e8a5d02", "name": "Dana Lee"},
			"body": "Your quota increase is approved.",
		})
	case "DISCUSSION_COMMENT":
		return base(map[string]any{
			"id": "comment_3f9e7a12", "discussionId": "discussion_2e7b9f14", "apiId": "api_8d3f2b7c",
			"body":   "Retry with the same Idempotency-Key; the 409 is a duplicate in flight.",
			"author": map[string]any{"id": "user_9c1d4b7e", "name": "Priya Raman"},
		})
	case "JOBS_REQUEST":
		s := "QUEUED"
		if action == "UPDATED" {
			s = "COMPLETED"
		}
		return base(map[string]any{
			"id": "job_0c5e8b47", "type": "API_SPEC_IMPORT", "status": s, "progress": 100,
			"apiId": "api_8d3f2b7c", "requestedBy": map[string]any{"id": "user_9c1d4b7e"},
			"result": map[string]any{"endpointsImported": 42, "warnings": 0},
		})
	}
	return base(map[string]any{
		"id": strings.ToLower(entity) + "_sample", "type": eventType, "hubId": hubID,
		"description": "sample " + eventType + " payload",
	})
}
