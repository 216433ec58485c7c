package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Header names of the webhook HTTP contract.
const (
	HeaderSecret    = "x-rapidapi-webhook-secret"
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	SecretPrefix    = "whsec_"
)

// Errors returned by Verify and ParseSecret.
var (
	ErrInvalidSecret     = errors.New("invalid webhook secret")
	ErrMissingHeaders    = errors.New("missing webhook headers")
	ErrTimestampTooOld   = errors.New("webhook timestamp outside tolerance")
	ErrNoMatchingSigning = errors.New("no matching webhook signature")
)

// NewSecret returns a new secret: "whsec_" + base64 of 32 random bytes.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ParseSecret returns the HMAC key of a whsec_ secret.
func ParseSecret(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %s", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSecret, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("%w: key shorter than 16 bytes", ErrInvalidSecret)
	}
	return key, nil
}

// SigningSecrets returns the secrets a webhook of cfg is signed with at now
// (Request.Secrets): the current secret first, then the previous secrets
// whose grace period has not ended. It returns nil when the hub has no
// secret.
func SigningSecrets(cfg *hubhooksv1.HubConfig, now time.Time) []string {
	if cfg.GetSecret() == "" {
		return nil
	}
	out := []string{cfg.GetSecret()}
	for _, p := range cfg.GetPreviousSecrets() {
		if p.GetSecret() != "" && p.GetExpiresAt().AsTime().After(now) {
			out = append(out, p.GetSecret())
		}
	}
	return out
}

// Sign returns "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with secret.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(unix, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SignatureHeader signs with every secret (current first) and joins the
// signatures with spaces, as webhook-signature carries them.
func SignatureHeader(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Verify checks a received webhook against secret the way a receiver should:
// the timestamp within tolerance of now, and one v1 signature matching in
// constant time.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp %q", ErrMissingHeaders, tsRaw)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampTooOld
	}
	want := mac(key, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSigning
}
