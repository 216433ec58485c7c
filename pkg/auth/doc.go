// Package auth authenticates and scopes gRPC calls to hubhooks.
//
// Every call carries "authorization: Bearer <token>". Two kinds of token
// exist:
//   - the admin token (HUBHOOKS_ADMIN_TOKEN), compared in constant time, acts
//     on every hub; services use it to call each other (BearerCredentials);
//   - hub tokens ("hht_" + 43 base64url characters), created and revoked
//     through ConfigService and kept in Redis by TokenStore as SHA-256
//     hashes only. A hub token acts on its own hub: a request naming another
//     hub_id is refused with PermissionDenied, and so are requests that reach
//     every hub (WatchHubConfig with all=true) and the admin-only methods
//     (token management, DeleteHub, PurgeEventLogs).
//
// Streams are registered while open (streams.go): a hub token holds at most
// Config.MaxStreamsPerToken, a connection Config.MaxStreamsPerConn; a
// revoked token's streams end at once (Authenticator.Run hears every
// revocation the TokenStore announces, and re-checks open streams' tokens
// every Config.StreamRecheck), and a stream looks its hub token up again
// before each message it sends. Refused calls are logged sampled.
//
// Missing, malformed, unknown and revoked tokens get Unauthenticated. When
// no admin token is configured, the servers accept loopback callers only
// (TCP from 127.0.0.0/8 or ::1, and unix sockets) and Authenticator.Warn
// says so loudly at start-up; a token a loopback caller does send is still
// checked. The standard health service and server reflection are open.
//
// Authenticator provides the server interceptors; ServerTLS and ClientTLS
// build the optional TLS and mutual-TLS transport credentials. Tokens are
// never logged.
package auth
