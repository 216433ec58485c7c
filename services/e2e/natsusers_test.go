package e2e_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// natsIdentities are the NATS users of the separate deployment
// (natsauth.ServerUsers), with passwords of the test's: the server takes
// users(), each binary gets env(role) and the test publishes as publish().
type natsIdentities map[natsauth.Role]string

func newNATSIdentities() natsIdentities {
	ids := natsIdentities{natsauth.Publisher: "test-publisher-0123456789"}
	for _, r := range natsauth.Services {
		ids[r] = "test-" + string(r) + "-0123456789"
	}
	return ids
}

// users are the server's users.
func (ids natsIdentities) users(t *testing.T) []*server.User {
	t.Helper()
	users, err := natsauth.ServerUsers(ids, cascade.Default().Subjects())
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// env is what a binary of role needs to reach the server at addr.
func (ids natsIdentities) env(role natsauth.Role, addr string) []string {
	return []string{"HUBHOOKS_NATS_URL=nats://" + addr, "HUBHOOKS_NATS_USER=" + string(role), "HUBHOOKS_NATS_PASSWORD=" + ids[role]}
}

// publisher is the option that connects as the publisher.
func (ids natsIdentities) publisher() nats.Option {
	return nats.UserInfo(string(natsauth.Publisher), ids[natsauth.Publisher])
}
