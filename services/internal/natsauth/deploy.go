package natsauth

import (
	"fmt"
	"strconv"
	"strings"
)

// DeployRoles are the users of the NATS server of the separate deployment
// (deploy/nats/users.conf): the publisher, each service and the monitor.
var DeployRoles = append(append([]Role{Publisher}, Services...), Monitor)

// PasswordEnv is the environment variable from which the NATS server of
// the separate deployment reads r's password (deploy/nats/users.conf);
// compose hands the same variable to r's service as HUBHOOKS_NATS_PASSWORD.
func PasswordEnv(r Role) string {
	return "HUBHOOKS_NATS_" + strings.ToUpper(string(r)) + "_PASSWORD"
}

// UsersConfHeader opens deploy/nats/users.conf.
const UsersConfHeader = `# The users of hubhooks' NATS server: one per service, "publisher" (the
# hub's domains) and "monitor" (operators: read-only JetStream information),
# each with exactly the permissions services/internal/natsauth defines. Generated; do not edit. After changing natsauth, run
#   go test ./services/internal/natsauth -run TestUsersConfIsCurrent -update
# (make test fails while this file is stale).
#
# Each password comes from an environment variable of the nats-server process
# (HUBHOOKS_NATS_<USER>_PASSWORD); nats-server refuses to start while one is
# unset. go run ./services/internal/natsauth/gensecrets writes them (and the
# TLS files) for a new deployment. No user may connect as a leaf node, route
# or websocket client, and a client without a user is refused.
`

// UsersConf is the authorization block of deploy/nats/users.conf: every
// DeployRoles user with its password from PasswordEnv and For's
// permissions. domainSubjects are what the publisher may publish.
func UsersConf(domainSubjects []string) ([]byte, error) {
	var b strings.Builder
	b.WriteString(UsersConfHeader)
	b.WriteString("authorization {\n  users: [\n")
	for _, r := range DeployRoles {
		p, err := For(r, domainSubjects)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: $%s\n", r, PasswordEnv(r))
		b.WriteString("      allowed_connection_types: [\"STANDARD\"]\n")
		b.WriteString("      permissions: {\n")
		b.WriteString("        publish: {\n")
		writeList(&b, "allow", p.Publish)
		if len(p.Deny) > 0 {
			writeList(&b, "deny", p.Deny)
		}
		b.WriteString("        }\n        subscribe: {\n")
		writeList(&b, "allow", p.Subscribe)
		b.WriteString("        }\n      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String()), nil
}

// writeList writes key: [ ... ] with one quoted subject a line (quoted,
// so "$JS..." is a subject, not a variable).
func writeList(b *strings.Builder, key string, subjects []string) {
	fmt.Fprintf(b, "          %s: [\n", key)
	for _, s := range subjects {
		fmt.Fprintf(b, "            %s\n", strconv.Quote(s))
	}
	b.WriteString("          ]\n")
}
