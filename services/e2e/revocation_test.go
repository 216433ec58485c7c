package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/auth"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

// TestRevokeThenRotate is the documented answer to a leaked hub token:
// revoke it, then generate a new secret. The leaked token's open
// WatchHubConfig stream ends at the revocation and never sees the new
// secret; the token can mint no token of its own to survive it.
func TestRevokeThenRotate(t *testing.T) {
	const admin = "admin-token-0123456789abcdef"
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: admin})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const hub = "leaky"
	if _, err := h.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	created, err := h.Config.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: hub, Description: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	leaked := created.GetToken()
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials(leaked)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	thief := hubhooksv1.NewConfigServiceClient(conn)

	// What the holder of the leaked token does.
	_, err = thief.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: hub})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("CreateHubToken with a hub token: %v, want PermissionDenied", err)
	}
	watch, err := thief.WatchHubConfig(ctx, &hubhooksv1.WatchHubConfigRequest{HubId: hub})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 16)
	ended := make(chan error, 1)
	go func() {
		for {
			c, err := watch.Recv()
			if err != nil {
				ended <- err
				return
			}
			seen <- c.GetSecret()
		}
	}()

	// The hub's admin answers: revoke, then rotate.
	if _, err := h.Config.RevokeHubToken(ctx, &hubhooksv1.RevokeHubTokenRequest{HubId: hub, Id: created.GetInfo().GetId()}); err != nil {
		t.Fatal(err)
	}
	rotated, err := h.Config.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: hub})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("the leaked token's stream ended with %v, want Unauthenticated (revoked)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leaked token's stream is still open 10s after its revocation")
	}
	close(seen)
	for s := range seen {
		if s == rotated.GetSecret() {
			t.Fatalf("the leaked token received the rotated secret (it had %s)", first.GetSecret())
		}
	}
	if _, err := thief.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetHubConfig with the revoked token: %v, want Unauthenticated", err)
	}
}
