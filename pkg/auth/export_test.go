package auth

// RevokedChannel is the Redis channel s announces revocations on (for the
// tests that wait for a watcher to listen before they revoke).
func RevokedChannel(s *TokenStore) string { return s.revokedChannel() }
