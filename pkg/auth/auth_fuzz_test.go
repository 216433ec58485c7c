package auth

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	fuzzAdmin = "admin-token-0123456789abcdef"
	fuzzHub   = "hht_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

// mapLookup is a TokenLookup over a fixed map.
type mapLookup map[string]string

func (m mapLookup) Lookup(_ context.Context, token string) (Token, error) {
	if hub, ok := m[token]; ok {
		return Token{HubID: hub, ID: "tok_" + hub}, nil
	}
	return Token{}, ErrTokenNotFound
}

func (m mapLookup) WatchRevocations(ctx context.Context, _ func(string)) error {
	<-ctx.Done()
	return nil
}

// FuzzParseBearer: parsing the authorization header never panics; what it
// accepts is exactly "Bearer" (any case), spaces, then a token of visible
// ASCII; any such token round-trips; and an Authenticator admits a header
// as admin only for the admin token and as a hub only for that hub's token,
// whatever the bytes around them.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{
		"Bearer " + fuzzAdmin, "bearer " + fuzzHub, "BEARER   x", "Bearer", "Bearer ", "Basic abc",
		"Bearer a b", "Bearer \x00", "Bearer " + fuzzAdmin + " ", " Bearer " + fuzzAdmin, "Bearer\t" + fuzzAdmin,
		"Bearer " + strings.Repeat("a", maxTokenLen+1), "Bearer " + fuzzAdmin[:len(fuzzAdmin)-1], "Bearer hht_",
	} {
		f.Add(s, "")
	}
	f.Add("Bearer "+fuzzAdmin, "Bearer "+fuzzAdmin)
	a, err := New(Config{
		AdminToken: fuzzAdmin,
		Tokens:     mapLookup{fuzzHub: "hub-a"},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	remote := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 1}})
	f.Fuzz(func(t *testing.T, h, second string) {
		vals := []string{h}
		if second != "" {
			vals = append(vals, second)
		}
		tok, present, err := parseBearer(vals)
		if !present {
			t.Fatalf("parseBearer(%q): header not seen", vals)
		}
		if err == nil {
			if len(vals) != 1 {
				t.Fatalf("parseBearer accepted %d headers", len(vals))
			}
			scheme, rest, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "bearer") || strings.TrimLeft(rest, " ") != tok {
				t.Fatalf("parseBearer(%q) = %q", h, tok)
			}
			if tok == "" || len(tok) > maxTokenLen || !visibleASCII(tok) {
				t.Fatalf("parseBearer(%q) accepted token %q", h, tok)
			}
		}
		if visibleASCII(h) && h != "" && len(h) <= maxTokenLen {
			got, _, err := parseBearer([]string{"Bearer " + h})
			if err != nil || got != h {
				t.Fatalf("round trip of %q: %q, %v", h, got, err)
			}
		}
		_ = wellFormed(h)

		md := metadata.MD{"authorization": vals}
		id, _, err := a.authenticate(metadata.NewIncomingContext(remote, md), "/hubhooks.v1.ConfigService/GetHubConfig")
		switch {
		case err == nil && id.Admin:
			if tok != fuzzAdmin {
				t.Fatalf("header %q admitted as admin", vals)
			}
		case err == nil:
			if tok != fuzzHub || id.HubID != "hub-a" {
				t.Fatalf("header %q admitted as hub %q", vals, id.HubID)
			}
		default:
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("header %q: %v, want Unauthenticated", vals, err)
			}
			if tok == fuzzAdmin || tok == fuzzHub {
				t.Fatalf("valid token in %q refused: %v", vals, err)
			}
			switch msg := status.Convert(err).Message(); msg {
			case msgMalformed, msgMissing, msgInvalid:
			default:
				t.Fatalf("unexpected refusal (echoing input?): %q", msg)
			}
		}
	})
}
