package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/hubid"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Hub token format and limits.
const (
	// TokenPrefix starts every hub token.
	TokenPrefix = "hht_"
	// TokenIDPrefix starts every hub token id.
	TokenIDPrefix = "tok_"
	// tokenLen is len(TokenPrefix) + base64url (no padding) of 32 bytes.
	tokenLen = len(TokenPrefix) + 43
	// ShownPrefixLen is how many leading characters of a token
	// HubToken.prefix shows.
	ShownPrefixLen = 8
	// MaxTokensPerHub bounds the live tokens of one hub.
	MaxTokensPerHub = 50
	// MaxDescriptionLen bounds a token's description, in bytes.
	MaxDescriptionLen = 200
)

// Errors of the token store.
var (
	// ErrTokenNotFound: the token is unknown, revoked, malformed or
	// belongs to another hub.
	ErrTokenNotFound = errors.New("hub token not found")
	// ErrTooManyTokens: the hub already has MaxTokensPerHub tokens.
	ErrTooManyTokens = errors.New("too many hub tokens")
	// ErrInvalidRequest: a bad hub id or description, or neither or both of
	// token and id given where exactly one is needed.
	ErrInvalidRequest = errors.New("invalid token request")
)

// TokenStore keeps hub tokens in Redis, as SHA-256 hashes only. Keys:
//
//	<prefix>{tok}:hash:<hex sha256 of token> -> "<hub id> <token id>"
//	<prefix>{tok}:hub:<hub id>               -> HASH token id -> JSON record (no token value)
//
// It is safe for concurrent use; Create and Revoke are atomic (Lua). A
// token is looked up by its hash alone (the caller's hub is not known
// until the token is), and Create and Revoke change the hub's hash and
// the token's key together, so on a Redis Cluster every token key shares
// the hash tag {tok} and one slot: at most MaxTokensPerHub small records
// per hub, read once per authenticated call.
type TokenStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewTokenStore returns a store writing keys under prefix + "{tok}:".
func NewTokenStore(rdb redis.UniversalClient, prefix string) (*TokenStore, error) {
	if rdb == nil {
		return nil, errors.New("auth: nil redis client")
	}
	return &TokenStore{rdb: rdb, prefix: prefix + "{tok}:"}, nil
}

type tokenRecord struct {
	ID          string `json:"id"`
	HubID       string `json:"hub_id"`
	Description string `json:"description"`
	CreatedAt   int64  `json:"created_at_unix_nano"`
	Prefix      string `json:"prefix"`
	Hash        string `json:"hash"`
}

func (r tokenRecord) info() *hubhooksv1.HubToken {
	return &hubhooksv1.HubToken{
		Id:          r.ID,
		HubId:       r.HubID,
		Description: r.Description,
		CreatedAt:   timestamppb.New(time.Unix(0, r.CreatedAt)),
		Prefix:      r.Prefix,
	}
}

func (s *TokenStore) hashKey(hash string) string { return s.prefix + "hash:" + hash }

// revokedChannel is the Redis pub/sub channel on which Revoke announces the
// id of every token it revoked (see WatchRevocations).
func (s *TokenStore) revokedChannel() string   { return s.prefix + "revoked" }
func (s *TokenStore) hubKey(hub string) string { return s.prefix + "hub:" + hub }

// hashToken returns the hex SHA-256 of a token. Tokens carry 256 random
// bits, so a plain hash (no salt, no slow KDF) cannot be reversed.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether token has the hub token format.
func wellFormed(token string) bool {
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token[len(TokenPrefix):])
	return err == nil
}

var createScript = redis.NewScript(`
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
`)

var revokeScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`)

// Create makes a new token for hubID and returns its value (to be shown
// once) and description. Only the token's hash is stored.
func (s *TokenStore) Create(ctx context.Context, hubID, description string) (string, *hubhooksv1.HubToken, error) {
	if err := hubid.Validate(hubID); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if len(description) > MaxDescriptionLen || !utf8.ValidString(description) {
		return "", nil, fmt.Errorf("%w: description must be valid UTF-8 of at most %d bytes", ErrInvalidRequest, MaxDescriptionLen)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	rec := tokenRecord{
		ID:          newTokenID(),
		HubID:       hubID,
		Description: description,
		CreatedAt:   time.Now().UnixNano(),
		Prefix:      token[:ShownPrefixLen],
		Hash:        hashToken(token),
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	n, err := createScript.Run(ctx, s.rdb, []string{s.hubKey(hubID), s.hashKey(rec.Hash)},
		rec.ID, string(js), hubID+" "+rec.ID, MaxTokensPerHub).Int()
	if err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	switch n {
	case 0:
		return "", nil, fmt.Errorf("%w: hub %s has %d tokens; revoke one first", ErrTooManyTokens, hubID, MaxTokensPerHub)
	case -1:
		return "", nil, errors.New("create token: hash collision") // 2^-256: never
	}
	return token, rec.info(), nil
}

func newTokenID() string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return TokenIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Revoke deletes one of hubID's tokens, named by its value or its id (if
// both are given they must name the same token). A token that is unknown,
// already revoked or belongs to another hub gives ErrTokenNotFound.
func (s *TokenStore) Revoke(ctx context.Context, hubID, token, id string) error {
	if err := hubid.Validate(hubID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if token == "" && id == "" {
		return fmt.Errorf("%w: name the token by its value or its id", ErrInvalidRequest)
	}
	var hash string
	if token != "" {
		if !wellFormed(token) {
			return ErrTokenNotFound
		}
		hash = hashToken(token)
		v, err := s.rdb.Get(ctx, s.hashKey(hash)).Result()
		if errors.Is(err, redis.Nil) {
			return ErrTokenNotFound
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		hub, tid, _ := strings.Cut(v, " ")
		if hub != hubID || (id != "" && id != tid) {
			return ErrTokenNotFound
		}
		id = tid
	} else {
		if len(id) > 64 {
			return ErrTokenNotFound
		}
		js, err := s.rdb.HGet(ctx, s.hubKey(hubID), id).Result()
		if errors.Is(err, redis.Nil) {
			return ErrTokenNotFound
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		var rec tokenRecord
		if err := json.Unmarshal([]byte(js), &rec); err != nil {
			return fmt.Errorf("revoke token: bad record: %w", err)
		}
		hash = rec.Hash
	}
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.hubKey(hubID), s.hashKey(hash)}, id, hubID+" "+id).Int()
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
		return ErrTokenNotFound // revoked concurrently
	}
	// Every server ends the token's open streams at once. An announcement
	// that does not go out is made up for by the servers' periodic re-check
	// (Config.StreamRecheck): the token is revoked either way.
	_ = s.rdb.Publish(ctx, s.revokedChannel(), id).Err()
	return nil
}

// WatchRevocations calls fn, one call at a time, with the id of every
// token any replica revokes from now on, until ctx ends (then it returns
// nil). Announcements made while Redis is unreachable are not seen: the
// caller re-checks its tokens now and then as well.
func (s *TokenStore) WatchRevocations(ctx context.Context, fn func(tokenID string)) error {
	sub := s.rdb.Subscribe(ctx, s.revokedChannel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			fn(m.Payload)
		}
	}
}

// List returns hubID's live tokens, oldest first, without their values.
func (s *TokenStore) List(ctx context.Context, hubID string) ([]*hubhooksv1.HubToken, error) {
	if err := hubid.Validate(hubID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	all, err := s.rdb.HGetAll(ctx, s.hubKey(hubID)).Result()
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	recs := make([]tokenRecord, 0, len(all))
	for _, js := range all {
		var rec tokenRecord
		if err := json.Unmarshal([]byte(js), &rec); err != nil {
			return nil, fmt.Errorf("list tokens: bad record: %w", err)
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].CreatedAt != recs[j].CreatedAt {
			return recs[i].CreatedAt < recs[j].CreatedAt
		}
		return recs[i].ID < recs[j].ID
	})
	out := make([]*hubhooksv1.HubToken, len(recs))
	for i, r := range recs {
		out[i] = r.info()
	}
	return out, nil
}

// Token is what a live hub token is: the hub it acts on and its id.
type Token struct {
	HubID string
	ID    string
}

// Lookup returns the hub and id of a live token, or ErrTokenNotFound. The
// token is looked up by its hash; malformed tokens never reach Redis.
func (s *TokenStore) Lookup(ctx context.Context, token string) (Token, error) {
	if !wellFormed(token) {
		return Token{}, ErrTokenNotFound
	}
	v, err := s.rdb.Get(ctx, s.hashKey(hashToken(token))).Result()
	if errors.Is(err, redis.Nil) {
		return Token{}, ErrTokenNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("look up token: %w", err)
	}
	hub, id, _ := strings.Cut(v, " ")
	return Token{HubID: hub, ID: id}, nil
}
