package natsauth_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

type errLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errLog) add(_ *nats.Conn, _ *nats.Subscription, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err.Error())
	l.mu.Unlock()
}

func (l *errLog) refused(subject string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, `"`+subject+`"`) {
			return true
		}
	}
	return false
}

func (l *errLog) any() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// TestEachServiceDoesItsJobOnly runs what each service does with NATS
// under its own identity (ensure its streams and consumer, fetch, publish
// its subjects) without a refusal, and checks that what it does not need
// is refused: other subjects, other consumers, reading internal subjects
// directly, and deleting or purging anything.
func TestEachServiceDoesItsJobOnly(t *testing.T) {
	subjects := cascade.Default().Subjects()
	passwords := map[natsauth.Role]string{}
	for _, r := range append([]natsauth.Role{natsauth.Publisher, natsauth.Hubd}, natsauth.Services...) {
		passwords[r] = "pw-" + string(r) + "-0123456789"
	}
	users, err := natsauth.ServerUsers(passwords, subjects)
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.RunServerWithUsers(t, users)
	eachServiceDoesItsJobOnly(t, srv, func(r natsauth.Role) []nats.Option {
		return []nats.Option{nats.UserInfo(string(r), passwords[r])}
	})
}

// eachServiceDoesItsJobOnly is TestEachServiceDoesItsJobOnly on srv, where
// login(role) are the options that connect as role.
func eachServiceDoesItsJobOnly(t *testing.T, srv *server.Server, login func(natsauth.Role) []nats.Option) {
	o := eventbus.Options{}
	streams := map[string]jetstream.StreamConfig{
		eventbus.StreamEvents:         eventbus.EventsStreamConfig(cascade.Default().StreamSubjects(), o),
		eventbus.StreamDeliveries:     eventbus.DeliveriesStreamConfig(o),
		eventbus.StreamAttempts:       eventbus.AttemptsStreamConfig(o),
		eventbus.StreamDeadLetters:    eventbus.DeadLettersStreamConfig(o),
		eventbus.StreamEventsOverflow: eventbus.EventsOverflowStreamConfig(o),
	}
	type job struct {
		ensure    []string
		consumers []jetstream.ConsumerConfig // of consumer[0]'s stream
		consumer  [2]string
		publish   []string
		replay    bool     // reads the domain events with ordered consumers
		dlq       bool     // reads HUBHOOKS_DLQ's messages by sequence (the deliverer's job published one)
		watch     []string // consumers of HUBHOOKS_DELIVERIES whose state it reads (made by the deliverer's job)
		notices   bool     // publishes and reads the event log's change notices
		denied    []string // subjects it may not publish to
		// more are consumers of other streams it consumes from.
		more map[string][]jetstream.ConsumerConfig
	}
	jobs := map[natsauth.Role]job{
		natsauth.Configsvc: {ensure: []string{eventbus.StreamAttempts}, publish: []string{eventbus.AttemptSubject("h")},
			denied: []string{eventbus.DeliverySubject("h"), "API.CREATED", eventbus.EventsOverflowSubject("h")}},
		natsauth.Expander: {ensure: []string{eventbus.StreamEvents, eventbus.StreamEventsOverflow, eventbus.StreamDeliveries, eventbus.StreamDeadLetters},
			consumer: [2]string{eventbus.StreamEvents, eventbus.ConsumerExpander},
			more: map[string][]jetstream.ConsumerConfig{eventbus.StreamEventsOverflow: {
				eventbus.ExpanderOverflowConsumerConfig(0, 30*time.Second, 10), eventbus.ExpanderOverflowConsumerConfig(eventbus.OverflowShards-1, 30*time.Second, 10)}},
			publish: []string{eventbus.EventsOverflowSubject("h"), eventbus.DeliverySubject("h"), eventbus.OverflowDeliverySubject("h"), eventbus.SubjectDeadLetterEvents},
			denied:  []string{eventbus.AttemptSubject("h"), "API.CREATED"}},
		natsauth.Deliverer: {ensure: []string{eventbus.StreamDeliveries, eventbus.StreamAttempts, eventbus.StreamDeadLetters},
			consumer: [2]string{eventbus.StreamDeliveries, eventbus.ConsumerDeliverer},
			consumers: []jetstream.ConsumerConfig{eventbus.LiveConsumerConfig(30*time.Second, 10),
				eventbus.OverflowConsumerConfig(0, 30*time.Second, 10), eventbus.OverflowConsumerConfig(eventbus.OverflowShards-1, 30*time.Second, 10)},
			publish: []string{eventbus.DeliverySubject("h"), eventbus.OverflowDeliverySubject("h"), eventbus.AttemptSubject("h"), eventbus.SubjectDeadLetterJobs},
			denied:  []string{eventbus.SubjectDeadLetterEvents, "API.CREATED", eventbus.EventsOverflowSubject("h")}},
		natsauth.Logger: {ensure: []string{eventbus.StreamAttempts, eventbus.StreamDeliveries},
			consumer: [2]string{eventbus.StreamAttempts, eventbus.ConsumerLogger},
			publish:  []string{eventbus.DeliverySubject("h"), eventbus.OverflowDeliverySubject("h")},
			watch:    []string{eventbus.ConsumerDeliverer, eventbus.OverflowConsumerName(0), eventbus.OverflowConsumerName(eventbus.OverflowShards - 1)},
			notices:  true,
			replay:   true,
			dlq:      true,
			denied: []string{eventbus.AttemptSubject("h"), "API.CREATED", eventbus.EventsOverflowSubject("h"),
				"$JS.API.CONSUMER.CREATE." + eventbus.StreamEvents + "." + eventbus.ConsumerExpander,
				"$JS.API.CONSUMER.MSG.NEXT." + eventbus.StreamEvents + "." + eventbus.ConsumerExpander}},
	}
	for _, role := range natsauth.Services {
		t.Run(string(role), func(t *testing.T) {
			j := jobs[role]
			var log errLog
			nc, js := natstest.Connect(t, srv, append(login(role),
				nats.CustomInboxPrefix(natsauth.InboxPrefix(role)), nats.ErrorHandler(log.add))...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, name := range j.ensure {
				if err := eventbus.Ensure(ctx, js, streams[name]); err != nil {
					t.Fatalf("ensure %s: %v", name, err)
				}
			}
			if j.consumer[0] != "" && len(j.consumers) == 0 {
				j.consumers = []jetstream.ConsumerConfig{eventbus.ConsumerConfig(j.consumer[1], 30*time.Second, 10)}
			}
			consume := func(stream string, cfgs []jetstream.ConsumerConfig) {
				for _, cfg := range cfgs {
					c, err := eventbus.EnsureConsumer(ctx, js, stream, cfg)
					if err != nil {
						t.Fatalf("ensure consumer %s: %v", cfg.Durable, err)
					}
					if _, err := c.Info(ctx); err != nil {
						t.Fatalf("consumer info: %v", err)
					}
					b, err := c.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
					if err != nil {
						t.Fatalf("fetch: %v", err)
					}
					for range b.Messages() {
					}
				}
			}
			consume(j.consumer[0], j.consumers)
			for stream, cfgs := range j.more {
				consume(stream, cfgs)
			}
			for _, subj := range j.publish {
				m := nats.NewMsg(subj)
				m.Data = []byte("x")
				if _, err := js.PublishMsg(ctx, m); err != nil {
					t.Fatalf("publish %s: %v", subj, err)
				}
			}
			if j.notices {
				got := make(chan struct{}, 1)
				if _, err := nc.Subscribe(eventbus.LogChangedSubject("h"), func(*nats.Msg) { got <- struct{}{} }); err != nil {
					t.Fatal(err)
				}
				if err := nc.PublishMsg(eventbus.NewLogChangedMsg("h", []string{"dlv_1"})); err != nil {
					t.Fatal(err)
				}
				select {
				case <-got:
				case <-time.After(5 * time.Second):
					t.Fatal("change notice not received")
				}
			}
			for _, name := range j.watch {
				c, err := js.Consumer(ctx, eventbus.StreamDeliveries, name)
				if err != nil {
					t.Fatalf("consumer %s: %v", name, err)
				}
				if _, err := c.Info(ctx); err != nil {
					t.Fatalf("consumer %s info: %v", name, err)
				}
			}
			if j.replay {
				oc, err := js.OrderedConsumer(ctx, eventbus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"API.CREATED", "USER.CREATED"}})
				if err != nil {
					t.Fatalf("replay's ordered consumer: %v", err)
				}
				if _, err := oc.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond)); err != nil {
					t.Fatalf("replay's fetch: %v", err)
				}
			}
			if j.dlq {
				s, err := js.Stream(ctx, eventbus.StreamDeadLetters)
				if err != nil {
					t.Fatalf("dead-letter stream info: %v", err)
				}
				if _, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(eventbus.SubjectDeadLetterJobs)); err != nil {
					t.Fatalf("read a dead letter: %v", err)
				}
			}
			if errs := log.any(); len(errs) > 0 {
				t.Fatalf("its own job was refused: %v", errs)
			}

			// Not its job.
			refusedPubs := append([]string(nil), j.denied...)
			for name := range streams {
				refusedPubs = append(refusedPubs, "$JS.API.STREAM.DELETE."+name, "$JS.API.STREAM.PURGE."+name)
				if !j.dlq || name != eventbus.StreamDeadLetters {
					refusedPubs = append(refusedPubs, "$JS.API.STREAM.MSG.GET."+name)
				}
				if !j.replay || name != eventbus.StreamEvents {
					refusedPubs = append(refusedPubs, "$JS.API.CONSUMER.CREATE."+name+".spy")
				}
			}
			refusedPubs = append(refusedPubs, "$JS.API.STREAM.LIST",
				"$JS.API.CONSUMER.DELETE."+eventbus.StreamEvents+"."+eventbus.ConsumerExpander,
				"$JS.API.CONSUMER.DELETE."+eventbus.StreamDeliveries+"."+eventbus.ConsumerDeliverer,
				"$JS.API.CONSUMER.DELETE."+eventbus.StreamAttempts+"."+eventbus.ConsumerLogger)
			for _, subj := range refusedPubs {
				if err := nc.Publish(subj, []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			refusedSubs := []string{"hubhooks.>", "API.CREATED", "_INBOX.>"}
			if !j.notices {
				refusedSubs = append(refusedSubs, eventbus.LogChangedSubject("h"))
			}
			for _, r := range natsauth.Services {
				if r != role {
					refusedSubs = append(refusedSubs, natsauth.InboxPrefix(r)+".>")
				}
			}
			for _, subj := range refusedSubs {
				if _, err := nc.Subscribe(subj, func(*nats.Msg) {}); err != nil {
					t.Fatal(err)
				}
			}
			for _, subj := range append(refusedPubs, refusedSubs...) {
				poll.Until(t, 10*time.Second, subj+" refused", func() bool { return log.refused(subj) })
			}
		})
	}

	t.Run("publisher", func(t *testing.T) {
		var log errLog
		nc, js := natstest.Connect(t, srv, append(login(natsauth.Publisher), nats.ErrorHandler(log.add))...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, "API.CREATED", []byte("{}")); err != nil {
			t.Fatalf("publish a domain event: %v", err)
		}
		for _, subj := range []string{"API.CREATD", eventbus.DeliverySubject("h"), eventbus.AttemptSubject("h"), eventbus.EventsOverflowSubject("h"),
			"$JS.API.STREAM.INFO." + eventbus.StreamEvents} {
			if err := nc.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, subj+" refused", func() bool { return log.refused(subj) })
		}
	})
}

// TestPermissionsOfHubdAreTheServices': the all-in-one identity may do
// what each service may, and nothing more.
func TestPermissionsOfHubdAreTheServices(t *testing.T) {
	hubd, err := natsauth.For(natsauth.Hubd, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, r := range natsauth.Services {
		p, err := natsauth.For(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Publish {
			want[s] = true
		}
	}
	got := map[string]bool{}
	for _, s := range hubd.Publish {
		got[s] = true
		if !want[s] {
			t.Errorf("hubd may publish %s, which no service may", s)
		}
	}
	for s := range want {
		if !got[s] {
			t.Errorf("a service may publish %s, hubd may not", s)
		}
	}
	if want := []string{natsauth.InboxPrefix(natsauth.Hubd) + ".>", eventbus.LogChangedSubject("*")}; !slices.Equal(hubd.Subscribe, want) {
		t.Errorf("hubd subscribes %v, want %v (its inbox, the log's change notices)", hubd.Subscribe, want)
	}
	if _, err := natsauth.For(natsauth.Publisher, nil); err == nil {
		t.Error("a publisher without domain subjects was accepted")
	}
	if _, err := natsauth.For("nobody", nil); err == nil {
		t.Error("an unknown role was accepted")
	}
}
