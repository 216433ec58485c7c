// Package webhook builds, signs, verifies and sends hubhooks webhooks.
//
// The body of every webhook is an Event as JSON. Requests carry the hub
// secret in x-rapidapi-webhook-secret and Standard Webhooks signatures
// (https://www.standardwebhooks.com): webhook-id, webhook-timestamp and
// webhook-signature = space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
// one per secret that is still valid, keyed with the secret in whsec_ form.
package webhook
