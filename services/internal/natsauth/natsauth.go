// Package natsauth says who may do what on the NATS server hubhooks uses:
// one identity per service, the hub's domains as "publisher", and the
// subjects each may publish and subscribe to. hubd's embedded server takes
// its users from here; deploy/nats/users.conf, which the separate
// deployment's configurations include, is generated from here
// (TestUsersConfIsCurrent, TestDeployConfigMatches keep the two in step).
//
// What each identity may do:
//
//	publisher  publish the domain-event subjects (API.CREATED, ...: the cascade rules'
//	           subjects, so a mistyped one is refused); read replies on _INBOX.> (its
//	           JetStream acks). Nothing else: no internal subject, no JetStream API.
//	configsvc  ensure HUBHOOKS_ATTEMPTS; publish attempt records (test events)
//	expander   ensure HUBHOOKS_EVENTS, HUBHOOKS_EVENTS_OVERFLOW, HUBHOOKS_DELIVERIES,
//	           HUBHOOKS_DLQ; consume HUBHOOKS_EVENTS as "expander" and HUBHOOKS_EVENTS_OVERFLOW
//	           as "expander-overflow-<shard>"; publish a flooding hub's domain events to
//	           hubhooks.events.overflow.<shard>.<hub> (the only identity that may), delivery
//	           jobs (live and overflow) and dead letters of events
//	deliverer  ensure HUBHOOKS_DELIVERIES, HUBHOOKS_ATTEMPTS, HUBHOOKS_DLQ; consume
//	           HUBHOOKS_DELIVERIES as "deliverer" and "deliverer-overflow-<shard>"; publish
//	           jobs (retries, live and overflow), attempt records, dead letters of jobs
//	logger     ensure HUBHOOKS_ATTEMPTS, HUBHOOKS_DELIVERIES; consume HUBHOOKS_ATTEMPTS as
//	           "logger"; publish and read the change notices of the event log
//	           (hubhooks.logchanged.<hub>, for live tails); and for OperationsService: read the state of the
//	           deliverer's consumers (the pace of bulk work), read HUBHOOKS_EVENTS with ordered consumers
//	           of its own (replay; never the expander's), publish delivery jobs (live and overflow),
//	           read HUBHOOKS_DLQ's messages by sequence (ListDeadLetters)
//	hubd       all four services in one process
//	monitor    for operators and monitoring of the separate deployment: read
//	           JetStream's account, stream and consumer information (`nats stream
//	           info`, `nats consumer info` with --inbox-prefix _HUBHOOKS_INBOX.monitor);
//	           no message, no change
//
// "Ensure" is creating, updating and reading a stream's or a consumer's
// configuration. No identity may delete or purge a stream or delete a
// service's durable consumer; only the logger reads messages by sequence,
// of HUBHOOKS_DLQ only; only the monitor lists streams. Each service receives its
// replies and fetched messages on an inbox of its own (InboxPrefix), which no
// other identity may subscribe to.
package natsauth

import (
	"fmt"
	"slices"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
)

// Role names an identity on the NATS server; it is also its user name in
// hubd's embedded server and in deploy/nats/users.conf.
type Role string

// The roles.
const (
	Publisher Role = "publisher"
	Configsvc Role = "configsvc"
	Expander  Role = "expander"
	Deliverer Role = "deliverer"
	Logger    Role = "logger"
	Hubd      Role = "hubd"
	Monitor   Role = "monitor"
)

// Services are the roles of the four services, in the order of the pipeline.
var Services = []Role{Configsvc, Expander, Deliverer, Logger}

// PublisherInbox is where a publisher receives replies: the NATS clients'
// default inbox prefix, so `nats` and every client library work unchanged.
const PublisherInbox = "_INBOX"

// InboxPrefix is the reply-subject prefix a service role's connection
// uses (nats.CustomInboxPrefix): the messages it fetches from JetStream and
// the answers of the JetStream API arrive there, so no other identity may
// read them.
func InboxPrefix(r Role) string { return "_HUBHOOKS_INBOX." + string(r) }

// Permissions are the subjects an identity may publish and subscribe to,
// and the subjects it may not publish to although Publish matches them
// (Deny wins): everything else is denied.
type Permissions struct {
	Publish   []string
	Deny      []string
	Subscribe []string
}

// Server is p in the nats-server's form.
func (p Permissions) Server() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish), Deny: slices.Clone(p.Deny)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
}

// consumer names a durable consumer of a stream.
type consumer struct{ stream, name string }

// durables are the services' durable consumers.
var durables = append(append([]consumer{
	{eventbus.StreamAttempts, eventbus.ConsumerLogger},
	{eventbus.StreamOps, eventbus.ConsumerOperations},
}, expanderConsumers...), delivererConsumers...)

// expanderConsumers are the expander's: the domain events', then one per
// events-overflow shard.
var expanderConsumers = refs(eventbus.ExpanderConsumers())

// delivererConsumers are the deliverer's: live, then one per overflow shard.
var delivererConsumers = refs(eventbus.DelivererConsumers())

func refs(cs []eventbus.ConsumerRef) []consumer {
	var out []consumer
	for _, c := range cs {
		out = append(out, consumer{c.Stream, c.Consumer})
	}
	return out
}

// use is what one service does with JetStream.
type use struct {
	ensure  []string   // streams it creates or updates
	consume []consumer // durable consumers it consumes from
	watch   []consumer // other services' consumers whose state it reads
	replay  []string   // streams it reads from a point in time, with ordered consumers of its own
	get     []string   // streams whose messages it reads by sequence (no consumer)
	publish []string   // subjects it publishes to
	listen  []string   // plain NATS subjects it subscribes to
}

var (
	deliveries = eventbus.DeliverySubject("*")
	overflow   = eventbus.OverflowDeliverySubjects
	attempts   = eventbus.AttemptSubject("*")
	logChanged = eventbus.LogChangedSubject("*")
	ops        = eventbus.OpsSubject("*")
)

var uses = map[Role]use{
	Configsvc: {
		ensure:  []string{eventbus.StreamAttempts, eventbus.StreamOps},
		publish: []string{attempts, ops},
	},
	Expander: {
		ensure:  []string{eventbus.StreamEvents, eventbus.StreamEventsOverflow, eventbus.StreamDeliveries, eventbus.StreamDeadLetters},
		consume: expanderConsumers,
		publish: []string{eventbus.EventsOverflowSubjects, deliveries, overflow, eventbus.SubjectDeadLetterEvents},
	},
	Deliverer: {
		ensure:  []string{eventbus.StreamDeliveries, eventbus.StreamAttempts, eventbus.StreamDeadLetters, eventbus.StreamOps},
		consume: delivererConsumers,
		publish: []string{deliveries, overflow, attempts, eventbus.SubjectDeadLetterJobs, ops},
	},
	// The logger announces changed entries to the loggers following a
	// hub's log live (TailEventLogs). Its process also serves
	// OperationsService: replay reads the domain events again; recovery
	// and replay publish delivery jobs on the hub's overflow shard, paced
	// by that shard's backlog; it delivers operational events as webhooks
	// (live), streams them to watchers and publishes its own; it lists
	// the dead letters (ListDeadLetters).
	Logger: {
		ensure:  []string{eventbus.StreamAttempts, eventbus.StreamDeliveries, eventbus.StreamOps},
		consume: []consumer{{eventbus.StreamAttempts, eventbus.ConsumerLogger}, {eventbus.StreamOps, eventbus.ConsumerOperations}},
		watch:   delivererConsumers,
		replay:  []string{eventbus.StreamEvents, eventbus.StreamOps},
		get:     []string{eventbus.StreamDeadLetters},
		publish: []string{deliveries, overflow, logChanged, ops},
		listen:  []string{logChanged},
	},
}

func init() {
	var all use
	for _, r := range Services {
		u := uses[r]
		all.ensure = append(all.ensure, u.ensure...)
		all.consume = append(all.consume, u.consume...)
		all.watch = append(all.watch, u.watch...)
		all.replay = append(all.replay, u.replay...)
		all.get = append(all.get, u.get...)
		all.publish = append(all.publish, u.publish...)
		all.listen = append(all.listen, u.listen...)
	}
	uses[Hubd] = all
}

// For returns the permissions of r. domainSubjects are the domain-event
// subjects (cascade.Rules.Subjects: "API.CREATED", ...); only the
// publisher's permissions use them.
func For(r Role, domainSubjects []string) (Permissions, error) {
	if r == Publisher {
		if len(domainSubjects) == 0 {
			return Permissions{}, fmt.Errorf("natsauth: the publisher needs the domain-event subjects")
		}
		return Permissions{Publish: slices.Clone(domainSubjects), Subscribe: []string{PublisherInbox + ".>"}}, nil
	}
	if r == Monitor {
		return Permissions{
			Publish: []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*",
				"$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.INFO.*.*"},
			Subscribe: []string{InboxPrefix(r) + ".>"},
		}, nil
	}
	u, ok := uses[r]
	if !ok {
		return Permissions{}, fmt.Errorf("natsauth: unknown role %q", r)
	}
	p := u.permissions()
	p.Subscribe = append([]string{InboxPrefix(r) + ".>"}, u.listen...)
	return p, nil
}

// permissions are u's publish permissions (the JetStream API calls and
// subjects, each once, and what is denied among them); the caller adds the
// inbox.
func (u use) permissions() Permissions {
	var pub, deny []string
	add := func(list *[]string, subjects ...string) {
		for _, s := range subjects {
			if !slices.Contains(*list, s) {
				*list = append(*list, s)
			}
		}
	}
	for _, s := range u.ensure {
		add(&pub, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.INFO."+s)
	}
	for _, c := range u.consume {
		add(&pub,
			"$JS.API.CONSUMER.CREATE."+c.stream+"."+c.name,
			// With a filter subject, the create request names it too.
			"$JS.API.CONSUMER.CREATE."+c.stream+"."+c.name+".>",
			"$JS.API.CONSUMER.INFO."+c.stream+"."+c.name,
			"$JS.API.CONSUMER.MSG.NEXT."+c.stream+"."+c.name,
			// Acks, naks, in-progress and terms, in both reply formats
			// ($JS.ACK.<stream>.<consumer>... and
			// $JS.ACK.<domain>.<account hash>.<stream>.<consumer>...).
			"$JS.ACK."+c.stream+"."+c.name+".>",
			"$JS.ACK.*.*."+c.stream+"."+c.name+".>",
		)
	}
	for _, c := range u.watch {
		add(&pub, "$JS.API.CONSUMER.INFO."+c.stream+"."+c.name)
	}
	for _, s := range u.replay {
		// Ordered consumers have generated names (with the filter
		// subject as a last token when there is one); they are
		// unacknowledged and deleted when replaced.
		add(&pub,
			"$JS.API.STREAM.INFO."+s,
			"$JS.API.CONSUMER.CREATE."+s+".*",
			"$JS.API.CONSUMER.CREATE."+s+".*.>",
			"$JS.API.CONSUMER.INFO."+s+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
			"$JS.API.CONSUMER.DELETE."+s+".*",
		)
		// Not the services' durable consumers of the stream: only the
		// service that consumes one may create it or fetch from it.
		for _, d := range durables {
			if d.stream == s && !slices.Contains(u.consume, d) {
				add(&deny,
					"$JS.API.CONSUMER.CREATE."+s+"."+d.name,
					"$JS.API.CONSUMER.CREATE."+s+"."+d.name+".>",
					"$JS.API.CONSUMER.MSG.NEXT."+s+"."+d.name,
				)
			}
		}
	}
	for _, s := range u.get {
		// The stream allows no direct get: MSG.GET is the only way.
		add(&pub, "$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.MSG.GET."+s)
	}
	// No identity deletes a durable consumer.
	for _, d := range durables {
		if slices.Contains(u.replay, d.stream) {
			add(&deny, "$JS.API.CONSUMER.DELETE."+d.stream+"."+d.name)
		}
	}
	add(&pub, u.publish...)
	return Permissions{Publish: pub, Deny: deny}
}

// ServerUsers are the users of a NATS server for hubhooks: one per role
// of passwords, with its password and For's permissions, on standard
// client connections. It is what deploy/nats/users.conf declares; tests
// run the separate binaries against an embedded server with these users.
func ServerUsers(passwords map[Role]string, domainSubjects []string) ([]*server.User, error) {
	roles := make([]Role, 0, len(passwords))
	for r := range passwords {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	users := make([]*server.User, 0, len(roles))
	for _, r := range roles {
		p, err := For(r, domainSubjects)
		if err != nil {
			return nil, err
		}
		if passwords[r] == "" {
			return nil, fmt.Errorf("natsauth: no password for %s", r)
		}
		users = append(users, &server.User{
			Username: string(r), Password: passwords[r], Permissions: p.Server(),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeStandard: {}},
		})
	}
	return users, nil
}
