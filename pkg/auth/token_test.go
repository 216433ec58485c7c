package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/redistest"
)

func newStore(t *testing.T) (*auth.TokenStore, func() map[string]string) {
	t.Helper()
	rdb, prefix := redistest.New(t)
	s, err := auth.NewTokenStore(rdb, prefix)
	if err != nil {
		t.Fatalf("NewTokenStore: %v", err)
	}
	// dump returns every key and value under the test prefix.
	dump := func() map[string]string {
		t.Helper()
		ctx := context.Background()
		out := map[string]string{}
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatalf("keys: %v", err)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix+"{tok}:") {
				t.Errorf("key %q outside %stok:", k, prefix)
			}
			switch rdb.Type(ctx, k).Val() {
			case "string":
				out[k] = rdb.Get(ctx, k).Val()
			case "hash":
				for f, v := range rdb.HGetAll(ctx, k).Val() {
					out[k+"#"+f] = v
				}
			default:
				out[k] = "?"
			}
		}
		return out
	}
	return s, dump
}

func TestNewTokenStoreRejectsNil(t *testing.T) {
	if _, err := auth.NewTokenStore(nil, "x:"); err == nil {
		t.Fatal("NewTokenStore(nil) accepted")
	}
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	s, dump := newStore(t)

	tok, info, err := s.Create(ctx, "hub-a", "ci pipeline")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) != 47 {
		t.Fatalf("token %q: want hht_ + 43 characters", tok)
	}
	if info.GetHubId() != "hub-a" || info.GetDescription() != "ci pipeline" || info.GetPrefix() != tok[:8] ||
		!strings.HasPrefix(info.GetId(), auth.TokenIDPrefix) || info.GetCreatedAt() == nil {
		t.Fatalf("info = %v", info)
	}
	for k, v := range dump() {
		if strings.Contains(k, tok) || strings.Contains(v, tok) || strings.Contains(v, tok[len(auth.TokenPrefix):]) {
			t.Fatalf("token value stored in Redis at %s", k)
		}
	}

	got, err := s.Lookup(ctx, tok)
	if err != nil || got != (auth.Token{HubID: "hub-a", ID: info.GetId()}) {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
	list, err := s.List(ctx, "hub-a")
	if err != nil || len(list) != 1 || list[0].GetId() != info.GetId() || list[0].GetPrefix() != info.GetPrefix() {
		t.Fatalf("List = %v, %v", list, err)
	}
	if other, err := s.List(ctx, "hub-b"); err != nil || len(other) != 0 {
		t.Fatalf("List(hub-b) = %v, %v", other, err)
	}

	// Another hub cannot revoke it, by value or by id.
	if err := s.Revoke(ctx, "hub-b", tok, ""); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("Revoke from another hub by value = %v, want ErrTokenNotFound", err)
	}
	if err := s.Revoke(ctx, "hub-b", "", info.GetId()); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("Revoke from another hub by id = %v, want ErrTokenNotFound", err)
	}
	if err := s.Revoke(ctx, "hub-a", tok, "tok_other"); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("Revoke with mismatched id = %v, want ErrTokenNotFound", err)
	}
	if got, err := s.Lookup(ctx, tok); err != nil || got.HubID != "hub-a" {
		t.Fatalf("token gone after refused revokes: %+v, %v", got, err)
	}

	if err := s.Revoke(ctx, "hub-a", tok, ""); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := s.Lookup(ctx, tok); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("Lookup after revoke = %v, want ErrTokenNotFound", err)
	}
	if err := s.Revoke(ctx, "hub-a", tok, ""); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("second Revoke = %v, want ErrTokenNotFound", err)
	}
	if list, _ := s.List(ctx, "hub-a"); len(list) != 0 {
		t.Fatalf("List after revoke = %v", list)
	}
	if d := dump(); len(d) != 0 {
		t.Fatalf("keys left after revoke: %v", d)
	}

	// Revoke by id.
	tok2, info2, err := s.Create(ctx, "hub-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "hub-a", "", info2.GetId()); err != nil {
		t.Fatalf("Revoke by id: %v", err)
	}
	if _, err := s.Lookup(ctx, tok2); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Fatalf("Lookup after revoke by id = %v", err)
	}
}

func TestTokenStoreBadInput(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"create bad hub", func() error { _, _, err := s.Create(ctx, "hub a", ""); return err }, auth.ErrInvalidRequest},
		{"create empty hub", func() error { _, _, err := s.Create(ctx, "", ""); return err }, auth.ErrInvalidRequest},
		{"create long description", func() error {
			_, _, err := s.Create(ctx, "hub-a", strings.Repeat("x", auth.MaxDescriptionLen+1))
			return err
		}, auth.ErrInvalidRequest},
		{"create bad utf8", func() error { _, _, err := s.Create(ctx, "hub-a", "\xff"); return err }, auth.ErrInvalidRequest},
		{"revoke nothing named", func() error { return s.Revoke(ctx, "hub-a", "", "") }, auth.ErrInvalidRequest},
		{"revoke malformed", func() error { return s.Revoke(ctx, "hub-a", "hht_nope", "") }, auth.ErrTokenNotFound},
		{"revoke unknown id", func() error { return s.Revoke(ctx, "hub-a", "", "tok_nope") }, auth.ErrTokenNotFound},
		{"revoke unknown token", func() error {
			return s.Revoke(ctx, "hub-a", "hht_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "")
		}, auth.ErrTokenNotFound},
		{"list bad hub", func() error { _, err := s.List(ctx, "a/b"); return err }, auth.ErrInvalidRequest},
		{"lookup empty", func() error { _, err := s.Lookup(ctx, ""); return err }, auth.ErrTokenNotFound},
		{"lookup malformed", func() error { _, err := s.Lookup(ctx, "hht_"+strings.Repeat("!", 43)); return err }, auth.ErrTokenNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestTokenLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var last string
	for i := 0; i < auth.MaxTokensPerHub; i++ {
		tok, _, err := s.Create(ctx, "hub-a", "")
		if err != nil {
			t.Fatalf("Create #%d: %v", i+1, err)
		}
		last = tok
	}
	if _, _, err := s.Create(ctx, "hub-a", ""); !errors.Is(err, auth.ErrTooManyTokens) {
		t.Fatalf("Create beyond the limit = %v, want ErrTooManyTokens", err)
	}
	if _, _, err := s.Create(ctx, "hub-b", ""); err != nil {
		t.Fatalf("another hub is not limited by hub-a: %v", err)
	}
	if err := s.Revoke(ctx, "hub-a", last, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, "hub-a", ""); err != nil {
		t.Fatalf("Create after a revoke: %v", err)
	}
	if list, err := s.List(ctx, "hub-a"); err != nil || len(list) != auth.MaxTokensPerHub {
		t.Fatalf("List: %d tokens, %v", len(list), err)
	}
}
